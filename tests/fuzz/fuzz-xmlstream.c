/* fuzz-xmlstream.c: libFuzzer target for MynaXmlStream and the stanza
 * serializer.
 *
 * The first byte seeds how the rest is split into feed() calls and which
 * of pause(), release_idle() and restart-on-<proceed/>/<success/> are used.
 * The input is parsed twice, whole and split that way, with small limits:
 * both must report the same events (but see same_events()).  Every stanza
 * is serialized and parsed again inside a fresh stream; that must give back
 * the same serialization and the same tree.  Any difference calls abort(). */
#include <myna/xmlstream.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

enum {
  OPT_PAUSE = 1 << 0,     /* pause() in every callback */
  OPT_RELEASE = 1 << 1,   /* release_idle() in callbacks and between feeds */
  OPT_RESTART = 1 << 2,   /* reset() on <proceed/> and <success/> */
};

typedef struct {
  MynaXmlStream *stream;
  GString *log;
  guint options;
  gboolean paused;
} Run;

static const MynaXmlLimits limits = {
  .max_stanza_size = 4096, .max_depth = 16, .max_attrs = 16,
};

static void
check (gboolean ok, const char *what)
{
  if (!ok)
    {
      fprintf (stderr, "fuzz-xmlstream: %s\n", what);
      abort ();
    }
}

/* ------------------------------------------------------------------ */
/* Round trip of one stanza */

static gboolean
ns_same (const char *a, const char *b)
{
  return g_strcmp0 (a != NULL ? a : "", b != NULL ? b : "") == 0;
}

static gboolean
tree_equal (MynaStanza *a, MynaStanza *b)
{
  guint n;

  if (myna_stanza_is_text (a) || myna_stanza_is_text (b))
    return myna_stanza_is_text (a) && myna_stanza_is_text (b)
           && strcmp (myna_stanza_get_text (a), myna_stanza_get_text (b)) == 0;
  if (g_strcmp0 (myna_stanza_get_name (a), myna_stanza_get_name (b)) != 0
      || !ns_same (myna_stanza_get_ns (a), myna_stanza_get_ns (b)))
    return FALSE;
  n = myna_stanza_get_n_attrs (a);
  if (n != myna_stanza_get_n_attrs (b))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      const char *ns, *name, *value;

      myna_stanza_get_attr_nth (a, i, &ns, &name, &value);
      if (g_strcmp0 (myna_stanza_get_attr_ns (b, ns, name), value) != 0)
        return FALSE;
    }
  n = myna_stanza_get_n_children (a);
  if (n != myna_stanza_get_n_children (b))
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (!tree_equal (myna_stanza_get_child_nth (a, i),
                     myna_stanza_get_child_nth (b, i)))
      return FALSE;
  return TRUE;
}

static void
keep_stanza (gpointer user_data, MynaStanza *stanza)
{
  MynaStanza **slot = user_data;

  check (*slot == NULL, "re-parse gave two stanzas");
  *slot = myna_stanza_ref (stanza);
}

static void
reparse_error (gpointer user_data, const char *condition, const char *text)
{
  fprintf (stderr, "fuzz-xmlstream: re-parse: %s: %s\n", condition, text);
  abort ();
}

/* Serializes @stanza, parses that inside a stream with @default_ns and
 * checks the result. */
static void
round_trip (MynaStanza *stanza, const char *default_ns)
{
  MynaXmlStreamCallbacks cb = { .stanza = keep_stanza, .error = reparse_error };
  MynaXmlLimits big = { 0, 0, 0 };
  g_autoptr(GString) xml = g_string_new (NULL);
  g_autoptr(GString) input = g_string_new ("<stream:stream");
  g_autoptr(GString) again = g_string_new (NULL);
  g_autoptr(MynaStanza) back = NULL;
  MynaXmlStream *stream;

  myna_stanza_serialize (stanza, default_ns, xml);
  check (g_utf8_validate (xml->str, xml->len, NULL), "invalid UTF-8 written");
  if (default_ns != NULL)
    {
      g_string_append (input, " xmlns='");
      myna_xml_escape_append (input, default_ns, -1);
      g_string_append_c (input, '\'');
    }
  g_string_append (input, " xmlns:stream='" MYNA_NS_STREAMS "'>");
  g_string_append_len (input, xml->str, xml->len);

  stream = myna_xml_stream_new (&cb, &back);
  myna_xml_stream_set_limits (stream, &big);
  check (myna_xml_stream_feed (stream, input->str, input->len, NULL),
         "re-parse failed");
  myna_xml_stream_free (stream);
  check (back != NULL, "re-parse gave no stanza");
  myna_stanza_serialize (back, default_ns, again);
  if (strcmp (xml->str, again->str) != 0)
    {
      fprintf (stderr, "first:  %s\nsecond: %s\n", xml->str, again->str);
      check (FALSE, "serialization changed");
    }
  check (tree_equal (stanza, back), "tree changed");
}

/* ------------------------------------------------------------------ */
/* Event logs */

static void
after_callback (Run *run)
{
  if (run->options & OPT_PAUSE)
    {
      myna_xml_stream_pause (run->stream);
      run->paused = TRUE;
    }
  if (run->options & OPT_RELEASE)
    myna_xml_stream_release_idle (run->stream);
}

static void
on_open (gpointer user_data, MynaStanza *header)
{
  Run *run = user_data;
  const char *ns = myna_xml_stream_get_default_ns (run->stream);

  g_string_append_printf (run->log, "open ns=%s ", ns != NULL ? ns : "-");
  myna_stanza_serialize (header, NULL, run->log);
  g_string_append_c (run->log, '\n');
  after_callback (run);
}

static void
on_stanza (gpointer user_data, MynaStanza *stanza)
{
  Run *run = user_data;
  const char *ns = myna_xml_stream_get_default_ns (run->stream);
  const char *name = myna_stanza_get_name (stanza);

  g_string_append (run->log, "stanza ");
  myna_stanza_serialize (stanza, ns, run->log);
  g_string_append_c (run->log, '\n');
  round_trip (stanza, ns);
  if ((run->options & OPT_RESTART)
      && (strcmp (name, "proceed") == 0 || strcmp (name, "success") == 0))
    myna_xml_stream_reset (run->stream);
  after_callback (run);
}

static void
on_close (gpointer user_data)
{
  Run *run = user_data;

  g_string_append (run->log, "close\n");
}

static void
on_error (gpointer user_data, const char *condition, const char *text)
{
  Run *run = user_data;

  check (condition != NULL && text != NULL, "error without text");
  g_string_append_printf (run->log, "error %s\n", condition);
}

static const MynaXmlStreamCallbacks callbacks = {
  on_open, on_stanza, on_close, on_error,
};

/* Feeds @data in chunks drawn from @seed (all at once when @seed is 0)
 * and returns the event log. */
static GString *
run_stream (const uint8_t *data, size_t size, guint options, guint32 seed)
{
  Run run = { .options = options, .log = g_string_new (NULL) };
  size_t pos = 0;
  gboolean alive = TRUE;

  run.stream = myna_xml_stream_new (&callbacks, &run);
  myna_xml_stream_set_limits (run.stream, &limits);
  while (pos < size)
    {
      size_t chunk = size - pos;
      size_t used = 0;
      gsize before = run.log->len;
      gboolean ok;

      if (seed != 0)
        {
          /* xorshift32: mostly short chunks, now and then a long one */
          seed ^= seed << 13;
          seed ^= seed >> 17;
          seed ^= seed << 5;
          chunk = MIN (chunk, (seed & 7) == 0 ? seed % 512 + 1 : seed % 16 + 1);
        }
      run.paused = FALSE;
      ok = myna_xml_stream_feed (run.stream, (const char *) data + pos, chunk,
                                 &used);
      check (used <= chunk, "consumed more than fed");
      if (!alive)
        {
          check (!ok && run.log->len == before, "events after the end");
          break;
        }
      if (options & OPT_RELEASE)
        myna_xml_stream_release_idle (run.stream);
      check (myna_xml_stream_get_memory (run.stream) < 256 * 1024,
             "memory not bounded");
      if (!ok)
        {
          alive = FALSE;
          pos += chunk;     /* feed once more to check the silence */
          if (pos >= size)
            check (!myna_xml_stream_feed (run.stream, "<a/>", 4, NULL),
                   "alive after the end");
          continue;
        }
      check (used == chunk || run.paused, "stopped without a pause");
      pos += used;
    }
  myna_xml_stream_free (run.stream);
  return run.log;
}

/* Drops the condition of a final error. */
static void
blur_final_error (GString *log)
{
  const char *last = g_strrstr_len (log->str, log->len - 1, "\n");
  gsize start = last != NULL ? (gsize) (last - log->str) + 1 : 0;

  if (log->len > 0 && g_str_has_prefix (log->str + start, "error "))
    g_string_truncate (log, start + strlen ("error"));
}

/* Whether @longer is @shorter plus an error. */
static gboolean
one_error_more (const GString *shorter, const GString *longer)
{
  return g_str_has_prefix (longer->str, shorter->str)
         && strcmp (longer->str + shorter->len, "error") == 0;
}

/* Whether two runs agree.  libxml2's push parser decides with heuristics
 * whether it has enough bytes to go on (a '>' after the last '<' outside
 * apparent quotes, 300 bytes of a CDATA section, ...), so on malformed
 * input one run may still be waiting when the other has failed, or may
 * meet the size limit before the error the other has found.  Events before
 * the end must match exactly. */
static gboolean
same_events (GString *a, GString *b)
{
  blur_final_error (a);
  blur_final_error (b);
  return strcmp (a->str, b->str) == 0 || one_error_more (a, b)
         || one_error_more (b, a);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GString) whole = NULL;
  g_autoptr(GString) split = NULL;
  guint options;

  if (size < 1)
    return 0;
  options = data[0] >> 5;
  whole = run_stream (data + 1, size - 1, options & OPT_RESTART, 0);
  split = run_stream (data + 1, size - 1, options, data[0] * 2654435761u | 1);
  if (!same_events (whole, split))
    {
      fprintf (stderr, "whole:\n%s\nsplit (seed %u, options %u):\n%s\n",
               whole->str, data[0], options, split->str);
      check (FALSE, "events depend on the split");
    }
  return 0;
}
