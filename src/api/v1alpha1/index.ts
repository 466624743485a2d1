// The fedbackup.io/v1alpha1 API types. generated.ts is generated from crds/ by hack/gen-api-types.ts.
export * from "./generated.js";
