/* sm-count.h: the XEP-0198 counters, modulo 2^32 (XEP-0198 §4: `h`
 * wraps to 0 after 2^32 - 1).  Pure functions, tested alone. */
#pragma once

#include <glib.h>

/* How many stanzas an <a h='@h'/> acknowledges when the client had
 * acknowledged @acked before and @queued are still unacknowledged: the
 * difference modulo 2^32.  FALSE when it is more than @queued (the client
 * claims stanzas never sent: handled-count-too-high). */
static inline gboolean
sm_count_acked (guint32 acked, guint32 h, guint queued, guint32 *out_n)
{
  guint32 n = h - acked;       /* unsigned: wraps as the XEP says */

  if (n > queued)
    return FALSE;
  *out_n = n;
  return TRUE;
}

/* The `h` of @received stanzas counted since @base (a 64-bit running
 * count), modulo 2^32. */
static inline guint32
sm_count_h (guint64 received, guint64 base)
{
  return (guint32) (received - base);
}

/* Parses an `h` attribute: a decimal unsigned 32-bit number.  FALSE for
 * anything else (signs, junk, out of range). */
static inline gboolean
sm_count_parse (const char *text, guint32 *out_h)
{
  guint64 v = 0;

  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT32, &v, NULL))
    return FALSE;
  *out_h = (guint32) v;
  return TRUE;
}
