/**
 * zod's own messages in plain words, for every schema without a message of
 * its own: "is required" rather than "Invalid input: expected string,
 * received undefined". Imported for its effect by the modules that define
 * schemas; the messages name no field, since errors put the field first.
 *
 * @module
 */
import { z } from "zod";

const kinds: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  array: "an array",
  object: "a JSON object",
  record: "a JSON object",
};

type Issue = z.core.$ZodRawIssue;

function sized(issue: Issue & { origin?: string }, bound: number, side: "least" | "most") {
  if (issue.origin === "string") return `must have at ${side} ${bound} characters`;
  if (issue.origin === "array" || issue.origin === "set") {
    return `must have at ${side} ${bound} items`;
  }
  return `must be at ${side} ${bound}`;
}

/** The plain message for a zod issue, or undefined to keep zod's. */
export function plainMessage(issue: Issue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "is required";
      return `must be ${kinds[issue.expected] ?? issue.expected}`;
    case "too_small": {
      const min = Number(issue.minimum);
      if (min === 1 && (issue.origin === "string" || issue.origin === "array")) {
        return "must not be empty";
      }
      if (!issue.inclusive) return `must be more than ${min}`;
      return sized(issue, min, "least");
    }
    case "too_big": {
      const max = Number(issue.maximum);
      if (!issue.inclusive) return `must be less than ${max}`;
      return sized(issue, max, "most");
    }
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => `"${String(v)}"`).join(", ")}`;
  }
  return undefined;
}

z.config({ customError: plainMessage });
