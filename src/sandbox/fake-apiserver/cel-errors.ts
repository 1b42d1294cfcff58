// Why a CEL rule could not be evaluated: beyond this fake's subset, or failed at run time.

/** The rule uses CEL this evaluator does not implement. */
export class CelUnsupported extends Error {}

/** The rule failed at run time (no such key, wrong type), as a real server reports it. */
export class CelRuntimeError extends Error {}
