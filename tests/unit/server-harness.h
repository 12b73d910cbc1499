/* server-harness.h: an in-process MynaServer for unit tests — an inline
 * configuration, a temporary data directory, listeners on ephemeral ports,
 * and helpers that iterate the main loop until a condition holds or a
 * bounded timeout passes (never a blind sleep). */
#pragma once

#include "../../core/private.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
  MynaServer *server;
  char       *dir;
} ServerHarness;

/* Test log handling: warnings are expected in some tests, so only
 * criticals (bugs) stay fatal. */
static inline void
harness_init_logging (void)
{
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
}

static inline void
harness_rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        harness_rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

/* Starts a server on @extra_config appended to a base configuration with a
 * c2s listener on an ephemeral port and host "localhost". */
static inline void
harness_start (ServerHarness *h, const char *extra_config)
{
  g_autoptr(GError) error = NULL;
  const char *build = g_getenv ("MYNA_BUILD_ROOT");

  h->dir = g_dir_make_tmp ("myna-test-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *conf = g_strdup_printf (
      "[global]\n"
      "data_dir = %s\n"
      "module_path = %s/tests/modules\n"
      "%s\n"
      "[listener:c2s]\n"
      "port = 0\n"
      "[host:localhost]\n",
      h->dir, build != NULL ? build : ".", extra_config != NULL ? extra_config : "");
  g_autofree char *path = g_build_filename (h->dir, "test.conf", NULL);
  g_file_set_contents (path, conf, -1, &error);
  g_assert_no_error (error);
  MynaConfig *config = myna_config_load (path, &error);
  g_assert_no_error (error);
  h->server = myna_server_new (config, &error);
  g_assert_no_error (error);
  myna_server_scan_modules (h->server);
  g_assert_true (myna_server_start (h->server, &error));
  g_assert_no_error (error);
}

static inline void
harness_stop (ServerHarness *h)
{
  myna_server_stop (h->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  myna_server_free (h->server);
  harness_rm_rf (h->dir);
  g_free (h->dir);
}

static gboolean
harness_timeout_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the main loop until @cond (@data) is true or @ms pass. */
static inline gboolean
harness_wait (gboolean (*cond) (gpointer), gpointer data, guint ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (ms, harness_timeout_cb, &expired);

  while (!cond (data) && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return cond (data);
}
