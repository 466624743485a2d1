// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".cluster/", ".tools/", "charts/", "bench-results/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-floating-promises": "error",
      // Kubernetes objects are untyped JSON at the edges; the adapter narrows them.
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
    },
  },
  {
    // CommonJS where a tool requires it (mocha loads reporters with require()).
    files: ["**/*.cjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: "commonjs",
      globals: { require: "readonly", module: "writable", process: "readonly" },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // Only the adapter talks to the cluster: keep the client library out of everything else.
    files: ["src/**/*.ts"],
    ignores: ["src/k8s/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["@kubernetes/client-node"], message: "Kubernetes I/O belongs in src/k8s/." }] },
      ],
    },
  },
  {
    // Planning is pure: no I/O of any kind.
    files: ["src/planning/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*", "../k8s/*", "**/k8s/**", "@kubernetes/*"], message: "src/planning/ is pure." },
          ],
        },
      ],
    },
  },
);
