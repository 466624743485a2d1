// Label selectors in kubectl's text form: "a=b,c!=d,e,!f", "a==b", "a in (x,y)", "a notin (x,y)".

export type Requirement =
  | { key: string; op: "Equals" | "NotEquals"; value: string }
  | { key: string; op: "In" | "NotIn"; values: string[] }
  | { key: string; op: "Exists" | "DoesNotExist" };

const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function invalid(text: string, why: string): Error {
  return new Error(`invalid label selector "${text}": ${why}`);
}

/** Splits at commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms.map((t) => t.trim());
}

function checkKey(text: string, key: string): string {
  if (!KEY.test(key)) throw invalid(text, `"${key}" is not a valid label key`);
  return key;
}

function checkValue(text: string, value: string): string {
  if (value.length > 63 || !VALUE.test(value)) throw invalid(text, `"${value}" is not a valid label value`);
  return value;
}

/** Parses a selector; the empty selector has no requirements and matches everything. Throws on bad syntax. */
export function parseLabelSelector(text: string): Requirement[] {
  if (text.trim() === "") return [];
  return splitTerms(text).map((term): Requirement => {
    if (term === "") throw invalid(text, "empty requirement");
    const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(term);
    if (set) {
      if (set[3]!.trim() === "") throw invalid(text, `"${term}" needs at least one value`);
      const values = set[3]!.split(",").map((v) => checkValue(text, v.trim()));
      return { key: checkKey(text, set[1]!), op: set[2] === "in" ? "In" : "NotIn", values };
    }
    const cmp = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (cmp) {
      const op = cmp[2] === "!=" ? "NotEquals" : "Equals";
      return { key: checkKey(text, cmp[1]!), op, value: checkValue(text, cmp[3]!) };
    }
    if (term.startsWith("!")) return { key: checkKey(text, term.slice(1).trim()), op: "DoesNotExist" };
    return { key: checkKey(text, term), op: "Exists" };
  });
}

/** Whether labels satisfy every requirement (NotEquals and NotIn hold for a missing label, as in Kubernetes). */
export function matchesRequirements(requirements: readonly Requirement[], labels: Record<string, string>): boolean {
  for (const r of requirements) {
    const value = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
    switch (r.op) {
      case "Equals":
        if (value !== r.value) return false;
        break;
      case "NotEquals":
        if (value === r.value) return false;
        break;
      case "In":
        if (value === undefined || !r.values.includes(value)) return false;
        break;
      case "NotIn":
        if (value !== undefined && r.values.includes(value)) return false;
        break;
      case "Exists":
        if (value === undefined) return false;
        break;
      case "DoesNotExist":
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}
