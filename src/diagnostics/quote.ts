// User text inside messages is always cut: a 20,000-character name must still give a one-line message.

/** How much of a user's word a message shows. */
export const SHOWN_CHARS = 40;

/** `text` cut to SHOWN_CHARS characters, with `…` where it was cut. */
export function cut(text: string | number): string {
  const t = String(text);
  return t.length > SHOWN_CHARS ? `${t.slice(0, SHOWN_CHARS)}…` : t;
}

/** A word or value in backquotes, cut short. */
export function quote(text: string | number): string {
  return `\`${cut(text)}\``;
}
