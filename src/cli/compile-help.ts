// The part of `lasp compile --help` on how the output folder is treated (src/io/owned-folder.ts); its own
// module so the help needs nothing of the compiler loaded.

export const COMPILE_HELP = `
Output folder:
  lasp owns only the files it wrote there, listed in DIR/.lasp-manifest. Compiling again replaces
  them, removes those the program no longer has, and leaves every other file alone (your notes,
  cmake's build/). DIR must be new, empty, or written by lasp before: a file, an empty path or a
  non-empty folder lasp did not write (such as the current folder or your home) is refused with
  exit 2. --force writes into such a folder anyway, replacing files of the same names; it never
  deletes a file lasp did not write. Each file is written whole or not at all.`;
