/**
 * Cuts text for an error message or log line, marking the cut with "...".
 * `countRest` appends how much was dropped (for raw plugin output).
 */
export function truncate(text: string, limit: number, options: { countRest?: boolean } = {}): string {
  if (text.length <= limit) return text;
  return `${text.slice(0, limit)}...${options.countRest ? ` (${text.length - limit} more bytes)` : ''}`;
}
