/**
 * JSON Schema draft 2020-12, by ajv: checking a schema, compiling it, and
 * the violations of a value as the API reports them.
 *
 * @module
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import formats from "ajv-formats";

export type Validator = ValidateFunction;

/**
 * A compiler for one version of the catalog (a new one per version, so the
 * old compiled code goes with it). Not strict: keywords it does not know are
 * annotations, as the draft says; nothing is logged; a schema's `$id` is not
 * kept, so two types may use the same one.
 */
export function schemaCompiler(): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false, addUsedSchema: false });
  formats.default(ajv);
  return ajv;
}

/** Why `schema` is not a JSON Schema ajv can compile; null when it is one. */
export function schemaProblem(schema: unknown): string | null {
  if (typeof schema !== "boolean" && (typeof schema !== "object" || schema === null)) {
    return "must be a JSON Schema (an object or a boolean)";
  }
  try {
    // Checks it against the 2020-12 meta-schema first.
    schemaCompiler().compile(schema);
  } catch (err) {
    return `is not a valid JSON Schema (draft 2020-12): ${(err as Error).message}`;
  }
  return null;
}

/** One violation: where in the value (keys and indexes), its JSON Pointer, and ajv's message. */
export interface Violation {
  path: (string | number)[];
  pointer: string;
  message: string;
}

/**
 * What `validate` found wrong with `value`; empty when it is valid. A
 * missing or unexpected property is pointed at itself, not at its parent.
 */
export function violations(validate: Validator, value: unknown): Violation[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => {
    const keys = e.instancePath.split("/").slice(1).map(unescape);
    const own = ownProperty(e);
    if (own !== undefined) keys.push(own);
    return {
      path: indexed(value, keys),
      pointer: keys.map((k) => `/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`).join(""),
      message: e.message ?? "is invalid",
    };
  });
}

function ownProperty(e: ErrorObject): string | undefined {
  const params = e.params as { missingProperty?: string; additionalProperty?: string };
  if (e.keyword === "required") return params.missingProperty;
  if (e.keyword === "additionalProperties") return params.additionalProperty;
  return undefined;
}

const unescape = (key: string) => key.replaceAll("~1", "/").replaceAll("~0", "~");

/** The keys, with those that index an array as numbers. */
function indexed(value: unknown, keys: string[]): (string | number)[] {
  let at = value;
  return keys.map((key) => {
    const inArray = Array.isArray(at);
    at = (at as Record<string, unknown> | undefined)?.[key];
    return inArray ? Number(key) : key;
  });
}
