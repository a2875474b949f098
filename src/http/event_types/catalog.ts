/**
 * The event-type catalog as this process sees it: a {@linkcode FreshSnapshot}
 * no older than a second (as API keys are), its schemas compiled once per
 * version of the catalog. Ingest checks each event against it.
 *
 * @module
 */
import { ApiError, type FieldIssue } from "../../errors.ts";
import { FreshSnapshot } from "../../fresh_snapshot.ts";
import type { CatalogType } from "../../views/event_types.ts";
import { validationError } from "../error_handler.ts";
import { schemaCompiler, type Validator, violations } from "./json_schema.ts";

/** A change to the catalog is seen by every process within this. */
export const CATALOG_MAX_AGE_MS = 1000;

/** A type as ingest checks it: `broken` says why its stored schema does not compile. */
export type CompiledType = CatalogType & { validate: Validator | null; broken: string | null };

export interface CatalogVersion {
  version: number;
  types: Map<string, CompiledType>;
}

export interface EventCatalogOptions {
  /** `strict`: a type outside the catalog is refused (EVENT_TYPES). */
  mode: "open" | "strict";
  /** Milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

export class EventCatalog {
  #snapshot: FreshSnapshot<CatalogVersion>;
  #strict: boolean;

  /** `load` answers the catalog's version and, unless it is `known`, its types. */
  constructor(
    load: (known: number | null) => Promise<{ version: number; types: CatalogType[] | null }>,
    options: EventCatalogOptions,
  ) {
    this.#strict = options.mode === "strict";
    this.#snapshot = new FreshSnapshot(async () => {
      const known = this.#snapshot.peek();
      const read = await load(known?.version ?? null);
      if (read.types === null) return { ...known!, version: read.version };
      return compile(read.version, read.types);
    }, { maxAgeMs: CATALOG_MAX_AGE_MS, now: options.now ?? Date.now });
  }

  /** The catalog, read at most a second ago. */
  current(): Promise<CatalogVersion> {
    return this.#snapshot.get();
  }

  /** The catalog last read, however old; undefined before the first read. */
  last(): CatalogVersion | undefined {
    return this.#snapshot.peek();
  }

  /** Reads the catalog again: this process changed it, and sees the change at once. */
  refresh(): Promise<void> {
    return this.#snapshot.refresh();
  }

  /**
   * Why the catalog refuses an event: its `data` breaks its type's schema
   * (every violation, with its path inside `data`), or, in strict mode, its
   * type is not in the catalog. Undefined when it is accepted.
   */
  async refusal(event: { type: string; data: unknown }): Promise<ApiError | undefined> {
    const type = (await this.current()).types.get(event.type);
    if (type === undefined) {
      if (!this.#strict) return undefined;
      return validationError([{
        path: ["type"],
        message:
          `"${event.type}" is not in the event-type catalog (EVENT_TYPES=strict): add it with POST /event-types`,
      }], "json");
    }
    if (type.broken !== null) {
      return validationError([{
        path: ["type"],
        message:
          `"${event.type}" has a schema in the catalog that does not compile (${type.broken}): fix it with PATCH /event-types/${event.type}`,
      }], "json");
    }
    if (type.validate === null) return undefined;
    const found = violations(type.validate, event.data);
    if (found.length === 0) return undefined;
    const err = validationError(
      found.map((v) => ({ path: ["data", ...v.path], message: v.message })),
      "json",
    );
    const details = (err.details as FieldIssue[]).map((d, i) => ({
      ...d,
      path: found[i]!.pointer,
    }));
    return new ApiError(err.code, err.message, details);
  }
}

function compile(version: number, types: CatalogType[]): CatalogVersion {
  const ajv = schemaCompiler();
  return { version, types: new Map(types.map((t) => [t.name, compiled(ajv, t)])) };
}

// The API stores only schemas that compile; one written in SQL may not, and then only the events
// of its type are refused.
function compiled(ajv: ReturnType<typeof schemaCompiler>, type: CatalogType): CompiledType {
  if (type.schema === null) return { ...type, validate: null, broken: null };
  try {
    return { ...type, validate: ajv.compile(type.schema as object), broken: null };
  } catch (err) {
    return { ...type, validate: null, broken: (err as Error).message };
  }
}
