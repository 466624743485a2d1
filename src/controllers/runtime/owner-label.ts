// The objects a run creates (steps, Jobs, migrations) carry its name in a label: their changes wake it.
import type { KubeObject } from "../../k8s/types.js";
import type { EventKeys } from "./controller.js";

/** The key of the run named in `label` of the object, in the object's namespace; none without the label. */
export function ownerByLabel(label: string): EventKeys<KubeObject> {
  return (_event, obj) => {
    const owner = obj.metadata.labels?.[label];
    return owner ? [`${obj.metadata.namespace}/${owner}`] : [];
  };
}
