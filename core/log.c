/* log.c: the daemon's log writer — one line per record on stderr with time,
 * level and domain, filtered by the configured level; debug per domain with
 * G_MESSAGES_DEBUG=myna-muc as usual in GLib. */
#include "private.h"

#include <stdio.h>
#include <string.h>

static GLogLevelFlags log_threshold = G_LOG_LEVEL_INFO;

void
myna_log_set_level (const char *level)
{
  if (g_strcmp0 (level, "debug") == 0)
    log_threshold = G_LOG_LEVEL_DEBUG;
  else if (g_strcmp0 (level, "warning") == 0)
    log_threshold = G_LOG_LEVEL_WARNING;
  else if (g_strcmp0 (level, "error") == 0)
    log_threshold = G_LOG_LEVEL_CRITICAL;
  else
    log_threshold = G_LOG_LEVEL_INFO;
}

static const char *
level_name (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "ERROR";
  if (level & G_LOG_LEVEL_CRITICAL)
    return "CRITICAL";
  if (level & G_LOG_LEVEL_WARNING)
    return "WARNING";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "NOTICE";
  if (level & G_LOG_LEVEL_INFO)
    return "INFO";
  return "DEBUG";
}

static GLogWriterOutput
myna_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                 gpointer user_data)
{
  const char *domain = NULL, *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (strcmp (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
      else if (strcmp (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
    }
  /* Levels are bits with ERROR lowest: a larger bit is less severe. */
  GLogLevelFlags bit = level & G_LOG_LEVEL_MASK;
  if (bit > log_threshold && !(bit == G_LOG_LEVEL_DEBUG && !g_log_writer_default_would_drop (level, domain)))
    return G_LOG_WRITER_HANDLED;
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *ts = g_date_time_format (now, "%F %T.%f");
  ts[23] = '\0';
  fprintf (stderr, "%s %-8s %s: %s\n", ts, level_name (level), domain ? domain : "-",
           message ? message : "");
  return G_LOG_WRITER_HANDLED;
}

void
myna_log_init (void)
{
  g_log_set_writer_func (myna_log_writer, NULL, NULL);
}
