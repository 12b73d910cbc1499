/* myna-module-manifest.c: writes a module's manifest from its descriptor.
 *
 *   myna-module-manifest MODULE.so OUTPUT.module
 *
 * The C descriptor (MYNA_MODULE_DEFINE) is the one source of a module's
 * metadata; the manifest beside the .so repeats it so the core routes lazy
 * modules without opening them.  This tool opens the built .so (lazily,
 * locally: none of its code runs), normalises its descriptor as the core
 * does and writes every field: name, version, abi, description, serves,
 * events, requires, provides, uses, features, account_features, mode, the
 * library's file name and each config key with type, default, bounds and
 * description.  It refuses a descriptor the core would refuse (another
 * ABI, too small, no name, a config default that is not a valid value).
 * Built modules and plugins call it from a meson custom_target. */
#include "private.h"

#include <dlfcn.h>
#include <stdio.h>

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL, *library = NULL, *text = NULL;

  if (argc != 3)
    {
      g_printerr ("usage: myna-module-manifest MODULE.so OUTPUT.module\n");
      return 2;
    }
  /* dlopen searches the library path for a name without a slash. */
  path = g_path_is_absolute (argv[1]) || strchr (argv[1], '/') != NULL
           ? g_strdup (argv[1]) : g_strconcat ("./", argv[1], NULL);
  void *handle = dlopen (path, RTLD_LAZY | RTLD_LOCAL);
  if (handle == NULL)
    {
      g_printerr ("myna-module-manifest: cannot open %s: %s\n", argv[1], dlerror ());
      return 1;
    }
  const MynaModuleDesc *raw = dlsym (handle, "myna_module_desc");
  if (raw == NULL)
    {
      g_printerr ("myna-module-manifest: %s: no myna_module_desc symbol "
                  "(not a Myna module? use MYNA_MODULE_DEFINE)\n", argv[1]);
      dlclose (handle);
      return 1;
    }
  library = g_path_get_basename (argv[1]);
  if ((text = myna_module_manifest_for (raw, argv[1], library, &error)) == NULL)
    {
      g_printerr ("myna-module-manifest: %s\n", error->message);
      dlclose (handle);
      return 1;
    }
  dlclose (handle);
  if (!g_file_set_contents (argv[2], text, -1, &error))
    {
      g_printerr ("myna-module-manifest: %s\n", error->message);
      return 1;
    }
  return 0;
}
