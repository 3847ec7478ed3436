/**
 * A line the host's scripts print for tagflip rather than for the log:
 * `<tag> <kind> <args…>` on a line of its own (session.ts reads them; facts.ts
 * and the phases make sense of them).
 */
export interface ControlLine {
  kind: string;
  args: string[];
  /** Everything after the kind, as one string (for messages with spaces). */
  rest: string;
}
