/* services-harness.h: what test-services adds to mynad-harness.h —
 * restarting mynad on the same data directory, and "peers": raw clients
 * whose input goes through the real XML stream parser, so tests wait for
 * and inspect whole stanzas (each consumed when matched) instead of
 * searching the byte stream.  Every wait is bounded by WAIT_MS. */
#pragma once

#include "mynad-harness.h"

#include <myna/xmlstream.h>

/* Sends @n chat messages to @to from @c, ids p0…, each with a body of
 * @body_len letters: a backlog large enough to need pacing. */
static inline void
send_large_messages (Client *c, const char *to, guint n, gsize body_len)
{
  g_autoptr(GString) m = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    {
      g_string_printf (m, "<message type='chat' to='%s' id='p%u'><body>", to, i);
      for (gsize k = 0; k < body_len; k++)
        g_string_append_c (m, (char) ('a' + k % 26));
      g_string_append (m, "</body></message>");
      client_send (c, m->str);
    }
}

/* ---- peers ---------------------------------------------------------------- */

typedef struct {
  Client        *c;
  MynaXmlStream *xml;
  GQueue         stanzas;   /* MynaStanza*, received and not yet taken */
  gsize          fed;       /* bytes of c->in already parsed */
  gboolean       closed;    /* </stream:stream> or a stream error seen */
  char          *stream_error;
  guint          serial;
} Peer;

static inline void
peer_on_stanza (gpointer user_data, MynaStanza *stanza)
{
  Peer *p = user_data;

  if (g_strcmp0 (myna_stanza_get_name (stanza), "error") == 0
      && g_strcmp0 (myna_stanza_get_ns (stanza), MYNA_NS_STREAMS) == 0)
    {
      MynaStanza *condition = myna_stanza_first_element (stanza);
      g_free (p->stream_error);
      p->stream_error = g_strdup (condition != NULL ? myna_stanza_get_name (condition) : "?");
    }
  g_queue_push_tail (&p->stanzas, myna_stanza_ref (stanza));
}

static inline void
peer_on_close (gpointer user_data)
{
  ((Peer *) user_data)->closed = TRUE;
}

static inline void
peer_on_error (gpointer user_data, const char *condition, const char *text)
{
  g_test_message ("peer: the server's XML is broken: %s: %s", condition, text);
  ((Peer *) user_data)->closed = TRUE;
}

static const MynaXmlStreamCallbacks peer_callbacks = {
  .stanza = peer_on_stanza,
  .stream_close = peer_on_close,
  .error = peer_on_error,
};

/* Wraps @c (taking it).  With @mid_stream, what the client already read is
 * past the stream header (as after client_login), so a header is made up;
 * close tags left from a stanza that was cut off are skipped. */
static inline Peer *
peer_new (Client *c, gboolean mid_stream)
{
  static const char header[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
  Peer *p = g_new0 (Peer, 1);
  MynaXmlLimits limits = { 0 };

  p->c = c;
  p->xml = myna_xml_stream_new (&peer_callbacks, p);
  myna_xml_stream_set_limits (p->xml, &limits);
  g_queue_init (&p->stanzas);
  if (mid_stream)
    {
      myna_xml_stream_feed (p->xml, header, sizeof header - 1, NULL);
      while (g_str_has_prefix (c->in->str + p->fed, "</"))
        {
          const char *end = strchr (c->in->str + p->fed, '>');
          p->fed = end != NULL ? (gsize) (end + 1 - c->in->str) : c->in->len;
        }
    }
  return p;
}

static inline void
peer_free (Peer *p)
{
  g_queue_clear_full (&p->stanzas, (GDestroyNotify) myna_stanza_unref);
  myna_xml_stream_free (p->xml);
  client_free (p->c);
  g_free (p->stream_error);
  g_free (p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Peer, peer_free)

/* Parses whatever arrived; reads once first, waiting up to @ms. */
static inline gboolean
peer_pump (Peer *p, int ms)
{
  gboolean got = client_read (p->c, ms);

  if (p->fed < p->c->in->len && !p->closed)
    myna_xml_stream_feed (p->xml, p->c->in->str + p->fed, p->c->in->len - p->fed, NULL);
  p->fed = p->c->in->len;
  return got && !p->c->eof;
}

static inline void
peer_send (Peer *p, const char *xml)
{
  client_send (p->c, xml);
}

/* @stanza serialised in the client namespace, as the server wrote it. */
static inline char *
peer_stanza_text (MynaStanza *stanza)
{
  GString *out = g_string_new (NULL);

  myna_stanza_serialize (stanza, MYNA_NS_CLIENT, out);
  return g_string_free (out, FALSE);
}

static inline gboolean
peer_matches (MynaStanza *stanza, const char *name, const char *const *needles)
{
  g_autofree char *text = NULL;

  if (g_strcmp0 (myna_stanza_get_name (stanza), name) != 0)
    return FALSE;
  text = peer_stanza_text (stanza);
  for (guint i = 0; needles[i] != NULL; i++)
    if (strstr (text, needles[i]) == NULL)
      return FALSE;
  return TRUE;
}

static inline MynaStanza *
peer_take_match (Peer *p, const char *name, const char *const *needles)
{
  for (GList *l = p->stanzas.head; l != NULL; l = l->next)
    if (peer_matches (l->data, name, needles))
      {
        MynaStanza *s = l->data;
        g_queue_delete_link (&p->stanzas, l);
        return s;
      }
  return NULL;
}

static inline void
peer_log_queue (Peer *p, const char *name, const char *const *needles)
{
  g_autoptr(GString) all = g_string_new (NULL);

  for (GList *l = p->stanzas.head; l != NULL; l = l->next)
    {
      g_autofree char *text = peer_stanza_text (l->data);
      g_string_append_printf (all, "\n  %s", text);
    }
  g_test_message ("expected <%s/> with '%s'…; have:%s", name,
                  needles[0] != NULL ? needles[0] : "", all->str);
}

static inline const char **
peer_needles (const char *first, va_list ap)
{
  GPtrArray *needles = g_ptr_array_new ();

  for (const char *n = first; n != NULL; n = va_arg (ap, const char *))
    g_ptr_array_add (needles, (gpointer) n);
  g_ptr_array_add (needles, NULL);
  return (const char **) g_ptr_array_free (needles, FALSE);
}

/* Waits (bounded) for a <@name/> whose serialised form holds every needle,
 * and takes it.  Returns: (transfer full) (nullable) */
G_GNUC_NULL_TERMINATED static inline MynaStanza *
peer_expect (Peer *p, const char *name, const char *first, ...)
{
  va_list ap;
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  g_autofree const char **needles = NULL;
  MynaStanza *found;

  va_start (ap, first);
  needles = peer_needles (first, ap);
  va_end (ap);
  while ((found = peer_take_match (p, name, needles)) == NULL)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (p->c->eof || p->closed || left <= 0 || !peer_pump (p, left))
        {
          peer_pump (p, 0);
          found = peer_take_match (p, name, needles);
          if (found == NULL)
            peer_log_queue (p, name, needles);
          return found;
        }
    }
  return found;
}

/* Waits (bounded) for a <@name/> holding every needle and leaves it
 * queued, so everything that came before it is queued too.
 * Returns: (transfer none) (nullable) */
G_GNUC_NULL_TERMINATED static inline MynaStanza *
peer_await (Peer *p, const char *name, const char *first, ...)
{
  va_list ap;
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  g_autofree const char **needles = NULL;

  va_start (ap, first);
  needles = peer_needles (first, ap);
  va_end (ap);
  for (;;)
    {
      int left;

      for (GList *l = p->stanzas.head; l != NULL; l = l->next)
        if (peer_matches (l->data, name, needles))
          return l->data;
      left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (p->c->eof || p->closed || left <= 0 || !peer_pump (p, left))
        {
          peer_log_queue (p, name, needles);
          return NULL;
        }
    }
}

/* Whether a <@name/> holding every needle has arrived (without waiting;
 * call peer_sync first to be sure everything sent before is in). */
G_GNUC_NULL_TERMINATED static inline gboolean
peer_has (Peer *p, const char *name, const char *first, ...)
{
  va_list ap;
  g_autofree const char **needles = NULL;

  va_start (ap, first);
  needles = peer_needles (first, ap);
  va_end (ap);
  peer_pump (p, 0);
  for (GList *l = p->stanzas.head; l != NULL; l = l->next)
    if (peer_matches (l->data, name, needles))
      return TRUE;
  return FALSE;
}

/* A ping round trip: everything the server sent this peer before is
 * parsed and queued afterwards. */
static inline void
peer_sync (Peer *p)
{
  g_autofree char *id = g_strdup_printf ("sync-%u", ++p->serial);
  g_autofree char *ping = g_strdup_printf ("<iq type='get' id='%s' to='localhost'>"
                                           "<ping xmlns='urn:xmpp:ping'/></iq>", id);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);
  g_autoptr(MynaStanza) pong = NULL;

  peer_send (p, ping);
  pong = peer_expect (p, "iq", needle, "type='result'", NULL);
  g_assert_nonnull (pong);
}

/* Syncs, then forgets everything received. */
static inline void
peer_drain (Peer *p)
{
  peer_sync (p);
  g_queue_clear_full (&p->stanzas, (GDestroyNotify) myna_stanza_unref);
}

/* Waits (bounded) for the server to end the stream; TRUE when it did. */
static inline gboolean
peer_expect_closed (Peer *p)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (!p->c->eof)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || !client_read (p->c, left))
        break;
    }
  peer_pump (p, 0);
  return p->c->eof;
}

/* The condition of a stanza error, e.g. "conflict", or NULL. */
static inline const char *
stanza_error_condition (MynaStanza *stanza)
{
  MynaStanza *error = stanza != NULL ? myna_stanza_get_child (stanza, "error", NULL) : NULL;
  MynaStanza *condition = error != NULL ? myna_stanza_get_child (error, NULL, MYNA_NS_STANZAS)
                                        : NULL;

  return condition != NULL ? myna_stanza_get_name (condition) : NULL;
}

/* Whether @s, serialised, holds @needle. */
static inline gboolean
stanza_has_text (MynaStanza *s, const char *needle)
{
  g_autofree char *text = peer_stanza_text (s);

  return strstr (text, needle) != NULL;
}

/* How many times @needle occurs in @s, serialised. */
static inline guint
stanza_count_text (MynaStanza *s, const char *needle)
{
  g_autofree char *text = peer_stanza_text (s);
  guint n = 0;

  for (const char *at = strstr (text, needle); at != NULL; at = strstr (at + 1, needle))
    n++;
  return n;
}

/* @r is an error stanza with @condition (and, when @app is not NULL, a
 * serialised form holding @app: an application condition). */
static inline void
assert_stanza_error (MynaStanza *r, const char *condition, const char *app)
{
  g_assert_cmpstr (myna_stanza_get_type (r), ==, "error");
  g_assert_cmpstr (stanza_error_condition (r), ==, condition);
  if (app != NULL)
    g_assert_true (stanza_has_text (r, app));
}

static inline const char *
stanza_error_type (MynaStanza *stanza)
{
  MynaStanza *error = stanza != NULL ? myna_stanza_get_child (stanza, "error", NULL) : NULL;

  return error != NULL ? myna_stanza_get_attr (error, "type") : NULL;
}

/* Sends an IQ (@to may be NULL) and waits for its answer.
 * Returns: (transfer full) */
static inline MynaStanza *
request (Peer *p, const char *type, const char *to, const char *payload)
{
  g_autofree char *id = g_strdup_printf ("q%u", ++p->serial);
  g_autofree char *to_attr = to != NULL ? g_strdup_printf (" to='%s'", to) : g_strdup ("");
  g_autofree char *iq = g_strdup_printf ("<iq type='%s' id='%s'%s>%s</iq>", type, id,
                                         to_attr, payload);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);
  MynaStanza *answer;

  peer_send (p, iq);
  answer = peer_expect (p, "iq", needle, NULL);
  g_assert_nonnull (answer);
  return answer;
}

/* Whether built-in module @name was built (its generated manifest is in
 * the build tree). */
static inline gboolean
have_module (const char *name)
{
  g_autofree char *rel = g_strdup_printf ("modules/%s/%s.module", name, name);
  g_autofree char *path = build_path (rel);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

