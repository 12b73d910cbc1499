/* test-push: the push module (androidpn-style notifications) and the
 * legacy_auth module (XEP-0078) against a real mynad with an http
 * listener: notifications posted over HTTP reach every online resource
 * of their recipients as androidpn IQs and read back `delivered` once
 * answered; an offline recipient gets one at its next login, across a
 * restart too; a broadcast reaches every online account; an unanswered
 * one is re-sent at each login up to max_attempts, then `expired`; bad
 * bodies, unknown ids and bad tokens are refused as the rest API does.
 * And a client in the style of androidpn's: it registers in-band, logs in
 * inside TLS (SASL PLAIN, or jabber:iq:auth through legacy_auth), gets a
 * notification posted through /notification.do and answers nothing; the
 * legacy_auth refusals outside TLS.
 *
 * Events are waited for (bounded by WAIT_MS) as stanzas through the peers
 * of services-harness.h and as mynad's log lines ("delivered to …"). */
#include "services-harness.h"

#include <gnutls/gnutls.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

#define TOKEN   "push-token-0123456789"
#define API_KEY "key-4242"
#define MODULES "disco;ping;version;auth;bind;roster;presence;register;rest;push"

#define HTTP_LISTENER "[listener:http]\nkind = http\naddress = 127.0.0.1\nport = 0\n"
#define PUSH_CONF     "[module:rest]\ntoken = " TOKEN "\n" \
                      "[module:push]\napi_key = " API_KEY "\nmax_attempts = 3\n" \
                      "[module:register]\nallow_registration = true\nmin_seconds_between = 0s\n"

#define NOTE_NEEDLE   "androidpn:iq:notification"

typedef struct {
  Mynad        d;
  SoupSession *session;
  char        *base;
} Fixture;

/* The port mynad's log says the http listener bound. */
static guint
http_port (Mynad *d)
{
  g_autoptr(GRegex) re = g_regex_new ("listening for http on 127\\.0\\.0\\.1 port ([0-9]+)",
                                      0, 0, NULL);
  g_autoptr(GMatchInfo) match = NULL;
  g_autofree char *port = NULL;

  if (!g_regex_match (re, d->log->str, 0, &match))
    g_error ("mynad opened no http listener:\n%s", d->log->str);
  port = g_match_info_fetch (match, 1);
  return (guint) g_ascii_strtoull (port, NULL, 10);
}

static void
fixture_connect (Fixture *f)
{
  g_free (f->base);
  f->base = g_strdup_printf ("http://127.0.0.1:%u", http_port (&f->d));
}

/* @extra: more configuration (a module list override, legacy_auth's). */
static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, HTTP_LISTENER, PUSH_CONF,
                                       extra != NULL ? (const char *) extra : "", NULL);

  f->d.modules = MODULES;
  mynad_start (&f->d, conf);
  fixture_connect (f);
  f->session = soup_session_new_with_options ("timeout", WAIT_MS / 1000, NULL);
}

static void
setup_legacy (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, HTTP_LISTENER, PUSH_CONF,
                                       extra != NULL ? (const char *) extra : "", NULL);

  f->d.modules = MODULES ";legacy_auth";
  mynad_start (&f->d, conf);
  fixture_connect (f);
  f->session = soup_session_new_with_options ("timeout", WAIT_MS / 1000, NULL);
}

static void
setup_sm (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, HTTP_LISTENER, PUSH_CONF, NULL);

  f->d.modules = MODULES ";sm";
  mynad_start (&f->d, conf);
  fixture_connect (f);
  f->session = soup_session_new_with_options ("timeout", WAIT_MS / 1000, NULL);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_clear_object (&f->session);
  g_free (f->base);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* ---- HTTP ------------------------------------------------------------------------- */

typedef struct {
  guint               status;
  char               *text;
  JsonNode           *json;
  SoupMessageHeaders *headers;
} Reply;

static void
reply_free (Reply *r)
{
  g_free (r->text);
  g_clear_pointer (&r->json, json_node_unref);
  g_clear_pointer (&r->headers, soup_message_headers_unref);
  g_free (r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

static Reply *
call_typed (Fixture *f, const char *method, const char *path, const char *token,
            const char *type, const char *body)
{
  g_autofree char *url = g_strconcat (f->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  Reply *r = g_new0 (Reply, 1);
  gsize n;

  g_assert_nonnull (msg);
  if (token != NULL)
    {
      g_autofree char *auth = g_strconcat ("Bearer ", token, NULL);
      soup_message_headers_append (soup_message_get_request_headers (msg), "Authorization", auth);
    }
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (msg, type, bytes);
    }
  answer = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  r->status = soup_message_get_status (msg);
  const char *data = g_bytes_get_data (answer, &n);
  r->text = g_strndup (data != NULL ? data : "", n);
  r->headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  if (n > 0 && json_parser_load_from_data (parser, r->text, -1, NULL))
    r->json = json_node_copy (json_parser_get_root (parser));
  return r;
}

static Reply *
call (Fixture *f, const char *method, const char *path, const char *token, const char *body)
{
  return call_typed (f, method, path, token, "application/json", body);
}

/* Checks the status and, for errors, the {"error": "..."} shape. */
static void
assert_status (Reply *r, guint status)
{
  if (r->status != status)
    g_test_message ("expected %u, got %u: %s", status, r->status, r->text);
  g_assert_cmpuint (r->status, ==, status);
  if (status >= 400)
    {
      g_assert_nonnull (r->json);
      g_assert_nonnull (json_object_get_string_member_with_default (json_node_get_object (r->json),
                                                                    "error", NULL));
    }
}

/* Posts @body to /api/v1/notifications, expects 201 with @recipients and
 * a Location; returns the id. */
static char *
post_notification (Fixture *f, const char *body, gint64 recipients)
{
  g_autoptr(Reply) r = call (f, "POST", "/api/v1/notifications", TOKEN, body);
  JsonObject *o;
  g_autofree char *location = NULL;

  assert_status (r, 201);
  o = json_node_get_object (r->json);
  g_assert_cmpint (json_object_get_int_member_with_default (o, "recipients", -1), ==, recipients);
  location = g_strconcat ("/api/v1/notifications/",
                          json_object_get_string_member (o, "id"), NULL);
  g_assert_cmpstr (soup_message_headers_get_one (r->headers, "Location"), ==, location);
  return g_strdup (json_object_get_string_member (o, "id"));
}

/* GET /api/v1/notifications/@id: the recipient @jid's state and
 * attempts (NULL when it is not a recipient). */
static char *
state_of (Fixture *f, const char *id, const char *jid, gint64 *attempts)
{
  g_autofree char *path = g_strconcat ("/api/v1/notifications/", id, NULL);
  g_autoptr(Reply) r = call (f, "GET", path, TOKEN, NULL);
  JsonArray *recipients;

  assert_status (r, 200);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (r->json), "id"), ==, id);
  recipients = json_object_get_array_member (json_node_get_object (r->json), "recipients");
  for (guint i = 0; i < json_array_get_length (recipients); i++)
    {
      JsonObject *o = json_array_get_object_element (recipients, i);

      if (g_strcmp0 (json_object_get_string_member (o, "jid"), jid) == 0)
        {
          if (attempts != NULL)
            *attempts = json_object_get_int_member (o, "attempts");
          g_assert_cmpint (json_object_get_int_member (o, "at"), >, 0);
          return g_strdup (json_object_get_string_member (o, "state"));
        }
    }
  return NULL;
}

static void
assert_state (Fixture *f, const char *id, const char *jid, const char *state, gint64 attempts)
{
  gint64 got = -1;
  g_autofree char *s = state_of (f, id, jid, &got);

  if (g_strcmp0 (s, state) != 0 || got != attempts)
    {
      mynad_log_drain (&f->d);
      g_test_message ("mynad's log:\n%s", f->d.log->str);
    }
  g_assert_cmpstr (s, ==, state);
  g_assert_cmpint (got, ==, attempts);
}

/* Waits for mynad to log that @id reached @user. */
static void
wait_delivered (Fixture *f, const char *id, const char *user)
{
  g_autofree char *line = g_strdup_printf ("notification %s delivered to %s@localhost", id, user);

  g_assert_true (mynad_wait_log (&f->d, line, WAIT_MS));
}

/* ---- XMPP ------------------------------------------------------------------------- */

/* Logs in (SASL PLAIN on loopback) and sends initial presence. */
static Peer *
login (Fixture *f, const char *user, const char *resource)
{
  Client *c = client_login (&f->d, user, "secret-pass", resource);
  Peer *p;

  g_assert_nonnull (c);
  p = peer_new (c, TRUE);
  peer_send (p, "<presence/>");
  peer_sync (p);
  return p;
}

/* Waits for the notification IQ @id at @p and checks its content; answers
 * it with a result when @answer.  Returns the IQ's id attribute. */
static char *
expect_notification (Peer *p, const char *id, const char *full, const char *title,
                     gboolean answer)
{
  g_autofree char *idn = g_strdup_printf ("<id>%s</id>", id);
  g_autoptr(MynaStanza) iq = peer_expect (p, "iq", NOTE_NEEDLE, idn, NULL);
  MynaStanza *n;
  char *iq_id;

  g_assert_nonnull (iq);
  g_assert_cmpstr (myna_stanza_get_type (iq), ==, "set");
  g_assert_cmpstr (myna_stanza_get_from (iq), ==, "localhost");
  g_assert_cmpstr (myna_stanza_get_to (iq), ==, full);
  n = myna_stanza_get_child (iq, "notification", NOTE_NEEDLE);
  g_assert_nonnull (n);
  g_assert_cmpstr (myna_stanza_get_child_text (n, "id"), ==, id);
  g_assert_cmpstr (myna_stanza_get_child_text (n, "apiKey"), ==, API_KEY);
  g_assert_cmpstr (myna_stanza_get_child_text (n, "title"), ==, title);
  g_assert_nonnull (myna_stanza_get_child (n, "message", NULL));
  g_assert_nonnull (myna_stanza_get_child (n, "uri", NULL));
  iq_id = g_strdup (myna_stanza_get_id (iq));
  g_assert_nonnull (iq_id);
  if (answer)
    {
      g_autofree char *result = g_strdup_printf ("<iq type='result' to='localhost' id='%s'/>",
                                                 iq_id);
      peer_send (p, result);
    }
  return iq_id;
}

/* Nothing of the notification @id came to @p (after a round trip). */
static void
assert_no_notification (Peer *p, const char *id)
{
  g_autofree char *idn = g_strdup_printf ("<id>%s</id>", id);

  peer_sync (p);
  g_assert_false (peer_has (p, "iq", NOTE_NEEDLE, idn, NULL));
}

static void
add_users (Fixture *f, const char *const *users)
{
  for (guint i = 0; users[i] != NULL; i++)
    mynad_add_user (&f->d, users[i], "secret-pass");
}

/* ---- the API ------------------------------------------------------------------------- */

/* Two online resources of one recipient and one of another: each gets
 * the IQ; once answered, both recipients read back `delivered`. */
static void
test_online_delivered (Fixture *f, gconstpointer unused)
{
  add_users (f, (const char *[]) { "alice", "bob", NULL });
  g_autoptr(Peer) a1 = login (f, "alice", "phone");
  g_autoptr(Peer) a2 = login (f, "alice", "tablet");
  g_autoptr(Peer) b = login (f, "bob", "phone");
  g_autofree char *id = post_notification (f, "{\"to\": [\"alice@localhost\", \"bob@localhost\"],"
                                           " \"title\": \"Hello\", \"message\": \"caf\\u00e9 <&>\","
                                           " \"uri\": \"https://example.com/a?b=1&c=2\"}", 2);
  g_free (expect_notification (a1, id, "alice@localhost/phone", "Hello", TRUE));
  g_autofree char *i2 = expect_notification (a2, id, "alice@localhost/tablet", "Hello", FALSE);
  g_free (expect_notification (b, id, "bob@localhost/phone", "Hello", TRUE));

  wait_delivered (f, id, "alice");
  wait_delivered (f, id, "bob");
  assert_state (f, id, "alice@localhost", "delivered", 1);
  assert_state (f, id, "bob@localhost", "delivered", 1);
  /* The other resource's late answer changes nothing. */
  {
    g_autofree char *late = g_strdup_printf ("<iq type='result' to='localhost' id='%s'/>", i2);
    peer_send (a2, late);
    peer_sync (a2);
    assert_state (f, id, "alice@localhost", "delivered", 1);
  }
}

/* Offline at the post: queued; at the next login it arrives. */
static void
offline_next_login (Fixture *f, gboolean restart)
{
  add_users (f, (const char *[]) { "carol", NULL });
  g_autofree char *id = post_notification (f, "{\"to\": \"carol@localhost\", \"title\": \"Later\","
                                           " \"message\": \"m\", \"ttl\": 3600}", 1);
  assert_state (f, id, "carol@localhost", "queued", 0);
  if (restart)
    {
      mynad_restart (&f->d);
      fixture_connect (f);
      assert_state (f, id, "carol@localhost", "queued", 0);
    }
  g_autoptr(Peer) c = login (f, "carol", "phone");
  g_free (expect_notification (c, id, "carol@localhost/phone", "Later", TRUE));

  wait_delivered (f, id, "carol");
  assert_state (f, id, "carol@localhost", "delivered", 1);
}

static void
test_offline_next_login (Fixture *f, gconstpointer unused)
{
  offline_next_login (f, FALSE);
}

/* The same with a restart of mynad between the post and the login. */
static void
test_offline_across_restart (Fixture *f, gconstpointer unused)
{
  offline_next_login (f, TRUE);
}

/* "*": every account; the online ones get it at once, the offline one
 * stays queued. */
static void
test_broadcast (Fixture *f, gconstpointer unused)
{
  add_users (f, (const char *[]) { "alice", "bob", "dave", NULL });
  g_autoptr(Peer) a = login (f, "alice", "r");
  g_autoptr(Peer) b = login (f, "bob", "r");
  g_autofree char *id = post_notification (f, "{\"to\": \"*\", \"title\": \"All\", \"message\": \"m\"}",
                                           3);
  g_free (expect_notification (a, id, "alice@localhost/r", "All", TRUE));
  g_free (expect_notification (b, id, "bob@localhost/r", "All", TRUE));

  wait_delivered (f, id, "alice");
  wait_delivered (f, id, "bob");
  assert_state (f, id, "alice@localhost", "delivered", 1);
  assert_state (f, id, "bob@localhost", "delivered", 1);
  assert_state (f, id, "dave@localhost", "queued", 0);
}

/* A client that never answers gets it again at each login, max_attempts
 * (3) sends in all, then it is expired and not sent any more. */
static void
test_max_attempts (Fixture *f, gconstpointer unused)
{
  add_users (f, (const char *[]) { "erin", NULL });
  g_autofree char *id = NULL;

  {
    g_autoptr(Peer) p = login (f, "erin", "r");
    id = post_notification (f, "{\"to\": \"erin@localhost\", \"title\": \"Again\", \"message\": \"m\"}", 1);
    g_autofree char *iq = expect_notification (p, id, "erin@localhost/r", "Again", FALSE);
    g_assert_true (g_str_has_suffix (iq, ":1"));
  }
  assert_state (f, id, "erin@localhost", "queued", 1);
  for (guint n = 2; n <= 3; n++)
    {
      g_autoptr(Peer) p = login (f, "erin", "r");
      g_autofree char *iq = expect_notification (p, id, "erin@localhost/r", "Again", FALSE);
      g_autofree char *suffix = g_strdup_printf (":%u", n);

      g_assert_true (g_str_has_suffix (iq, suffix));
      peer_sync (p);
      assert_state (f, id, "erin@localhost", "queued", n);
    }
  {
    g_autoptr(Peer) p = login (f, "erin", "r");
    g_autofree char *line = g_strdup_printf ("notification %s to erin@localhost expired", id);

    g_assert_true (mynad_wait_log (&f->d, line, WAIT_MS));
    assert_no_notification (p, id);
    assert_state (f, id, "erin@localhost", "expired", 3);
  }
  {
    g_autoptr(Peer) p = login (f, "erin", "r");
    assert_no_notification (p, id);
  }
}

/* A client with stream management that never answers the IQ but
 * acknowledges it (<a h/>) has it: `delivered`, and it is not sent again
 * at its next login. */
static void
test_sm_acked (Fixture *f, gconstpointer unused)
{
  add_users (f, (const char *[]) { "frank", NULL });
  g_autofree char *id = NULL;

  {
    g_autoptr(Peer) p = login (f, "frank", "r");
    peer_send (p, "<enable xmlns='urn:xmpp:sm:3'/>");
    g_autoptr(MynaStanza) enabled = peer_expect (p, "enabled", "urn:xmpp:sm:3", NULL);
    g_assert_nonnull (enabled);
    id = post_notification (f, "{\"to\": \"frank@localhost\", \"title\": \"Acked\", "
                            "\"message\": \"m\"}", 1);
    g_free (expect_notification (p, id, "frank@localhost/r", "Acked", FALSE));
    assert_state (f, id, "frank@localhost", "queued", 1);
    /* The IQ is the first stanza since <enabled/>. */
    peer_send (p, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    wait_delivered (f, id, "frank");
    assert_state (f, id, "frank@localhost", "delivered", 1);
  }
  {
    g_autoptr(Peer) p = login (f, "frank", "r");
    assert_no_notification (p, id);
  }
}

/* The sweep (sweep_interval 50ms, sweep_batch 2): a notification with a
 * 1 s ttl to five offline accounts reads back `expired` for each once
 * its expiry pass is done, a pass that went two recipients per turn;
 * later sweeps read no recipient state again (the counter in the sweep's
 * log line stays), across a restart too. */
#define SWEEP_CONF "[module:push]\nsweep_interval = 50ms\nsweep_batch = 2\n"

/* Waits for a sweep tick logged after the call and returns its count of
 * recipient states read in all. */
static guint64
next_sweep_reads (Fixture *f)
{
  g_autoptr(GRegex) re = g_regex_new ("push sweep [0-9]+ of localhost: [0-9]+ stored, "
                                      "([0-9]+) pass\\(es\\) under way, ([0-9]+) recipient",
                                      0, 0, NULL);
  g_autoptr(GMatchInfo) match = NULL;
  g_autofree char *passes = NULL, *reads = NULL;

  mynad_log_drain (&f->d);
  g_string_truncate (f->d.log, 0);
  g_assert_true (mynad_wait_log (&f->d, " recipient state(s) read in all", WAIT_MS));
  g_assert_true (g_regex_match (re, f->d.log->str, 0, &match));
  passes = g_match_info_fetch (match, 1);
  reads = g_match_info_fetch (match, 2);
  g_assert_cmpstr (passes, ==, "0");
  return g_ascii_strtoull (reads, NULL, 10);
}

static void
test_sweep_once (Fixture *f, gconstpointer unused)
{
  static const char *const users[] = { "s1", "s2", "s3", "s4", "s5", NULL };
  g_autofree char *id = NULL, *done = NULL, *batch = NULL;
  guint64 reads;

  add_users (f, users);
  id = post_notification (f, "{\"to\": [\"s1@localhost\", \"s2@localhost\", \"s3@localhost\", "
                          "\"s4@localhost\", \"s5@localhost\"], \"title\": \"Brief\", "
                          "\"message\": \"m\", \"ttl\": 1}", 5);
  assert_state (f, id, "s1@localhost", "queued", 0);
  done = g_strdup_printf ("notification %s: expiry pass done, 5 of 5 recipient(s) expired", id);
  batch = g_strdup_printf ("notification %s: expiry pass at 2 of 5 recipient(s)", id);
  g_assert_true (mynad_wait_log (&f->d, done, WAIT_MS));
  /* Bounded per turn: the pass stopped at 2 (and at 4) and went on. */
  g_assert_nonnull (strstr (f->d.log->str, batch));
  for (guint i = 0; users[i] != NULL; i++)
    {
      g_autofree char *jid = g_strdup_printf ("%s@localhost", users[i]);
      assert_state (f, id, jid, "expired", 0);
    }
  /* The next sweeps read nothing more. */
  reads = next_sweep_reads (f);
  g_assert_cmpuint (reads, ==, 5);
  g_assert_cmpuint (next_sweep_reads (f), ==, reads);
  g_assert_cmpuint (next_sweep_reads (f), ==, reads);
  /* Nor after a restart: the stored notification says it was swept. */
  mynad_restart (&f->d);
  fixture_connect (f);
  g_assert_cmpuint (next_sweep_reads (f), ==, 0);
  g_assert_cmpuint (next_sweep_reads (f), ==, 0);
  assert_state (f, id, "s3@localhost", "expired", 0);
}

/* Bad bodies 400 with the reason, unknown ids and accounts 404, bad or no
 * token 401 (before the body is read), wrong methods 405. */
static void
test_refusals (Fixture *f, gconstpointer unused)
{
  static const char *const bad[] = {
    "not json",
    "[]",
    "{\"to\": \"alice@localhost\", \"message\": \"m\"}",
    "{\"to\": \"alice@localhost/r\", \"title\": \"t\", \"message\": \"m\"}",
    "{\"to\": [], \"title\": \"t\", \"message\": \"m\"}",
    "{\"to\": \"alice@localhost\", \"title\": \"t\", \"message\": \"m\", \"ttl\": \"1h\"}",
    "{\"to\": \"alice@localhost\", \"title\": \"t\", \"message\": \"m\",}",
    NULL
  };

  add_users (f, (const char *[]) { "alice", NULL });
  for (guint i = 0; bad[i] != NULL; i++)
    {
      g_autoptr(Reply) r = call (f, "POST", "/api/v1/notifications", TOKEN, bad[i]);
      assert_status (r, 400);
    }
  {
    g_autoptr(Reply) r = call (f, "POST", "/api/v1/notifications", TOKEN,
                               "{\"to\": \"nobody@localhost\", \"title\": \"t\", \"message\": \"m\"}");
    assert_status (r, 404);
  }
  {
    g_autoptr(Reply) r = call (f, "GET", "/api/v1/notifications/0123456789abcdef", TOKEN, NULL);
    assert_status (r, 404);
  }
  {
    g_autoptr(Reply) r = call (f, "GET", "/api/v1/notifications/0123", "wrong-token", NULL);
    assert_status (r, 401);
    g_assert_nonnull (soup_message_headers_get_one (r->headers, "WWW-Authenticate"));
  }
  {
    g_autoptr(Reply) r = call (f, "POST", "/api/v1/notifications", NULL,
                               "{\"to\": \"alice@localhost\", \"title\": \"t\", \"message\": \"m\"}");
    assert_status (r, 401);
  }
  {
    g_autoptr(Reply) r = call_typed (f, "POST", "/notification.do", "wrong-token",
                                     "application/x-www-form-urlencoded",
                                     "action=send&broadcast=N&username=alice&title=t&message=m");
    assert_status (r, 401);
  }
  {
    g_autoptr(Reply) r = call_typed (f, "POST", "/notification.do", TOKEN,
                                     "application/x-www-form-urlencoded",
                                     "action=send&broadcast=N&title=t&message=m");
    assert_status (r, 400);
  }
  {
    g_autoptr(Reply) r = call_typed (f, "POST", "/notification.do", TOKEN,
                                     "application/x-www-form-urlencoded",
                                     "action=list&broadcast=N&username=alice&title=t&message=m");
    assert_status (r, 400);
  }
  {
    g_autoptr(Reply) r = call (f, "POST", "/notification.do", TOKEN, "{}");
    assert_status (r, 415);
  }
  {
    g_autoptr(Reply) r = call (f, "DELETE", "/api/v1/notifications", TOKEN, NULL);
    assert_status (r, 405);
  }
  /* The rest API's own routes are still there. */
  {
    g_autoptr(Reply) r = call (f, "GET", "/api/v1/status", TOKEN, NULL);
    assert_status (r, 200);
  }
}

/* ---- an androidpn-style client over TLS ------------------------------------------- */

/* A raw client inside TLS (STARTTLS on the c2s port, any certificate). */
typedef struct {
  int              fd;
  gnutls_session_t tls;
  gnutls_certificate_credentials_t creds;
  GString         *in;
} TlsClient;

static void
tls_client_free (TlsClient *t)
{
  gnutls_bye (t->tls, GNUTLS_SHUT_WR);
  gnutls_deinit (t->tls);
  gnutls_certificate_free_credentials (t->creds);
  close (t->fd);
  g_string_free (t->in, TRUE);
  g_free (t);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TlsClient, tls_client_free)

static void
tls_send (TlsClient *t, const char *xml)
{
  gsize len = strlen (xml), off = 0;

  while (off < len)
    {
      ssize_t n = gnutls_record_send (t->tls, xml + off, len - off);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      g_assert_cmpint (n, >, 0);
      off += (gsize) n;
    }
}

/* Waits (bounded) until the decrypted input holds @needle. */
static gboolean
tls_expect (TlsClient *t, const char *needle)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (strstr (t->in->str, needle) == NULL)
    {
      char buf[8192];
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      struct pollfd p = { .fd = t->fd, .events = POLLIN };
      ssize_t n;

      if (left <= 0)
        break;
      if (gnutls_record_check_pending (t->tls) == 0 && poll (&p, 1, left) <= 0)
        break;
      n = gnutls_record_recv (t->tls, buf, sizeof buf);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n <= 0)
        break;
      g_string_append_len (t->in, buf, n);
    }
  if (strstr (t->in->str, needle) == NULL)
    {
      g_test_message ("expected %s; got: %s", needle, t->in->str);
      return FALSE;
    }
  return TRUE;
}

/* Connects, opens a stream, STARTTLS, handshakes, opens the stream again
 * and reads the features. */
static TlsClient *
tls_connect (Fixture *f)
{
  Client *c = client_connect (&f->d);
  TlsClient *t = g_new0 (TlsClient, 1);
  int rc;

  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  g_assert_nonnull (strstr (c->in->str, "<starttls"));
  client_send (c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  g_assert_true (client_expect (c, "<proceed"));
  t->fd = dup (c->fd);
  client_free (c);
  t->in = g_string_new (NULL);
  g_assert_cmpint (gnutls_certificate_allocate_credentials (&t->creds), ==, 0);
  g_assert_cmpint (gnutls_init (&t->tls, GNUTLS_CLIENT), ==, 0);
  g_assert_cmpint (gnutls_set_default_priority (t->tls), ==, 0);
  gnutls_credentials_set (t->tls, GNUTLS_CRD_CERTIFICATE, t->creds);
  gnutls_server_name_set (t->tls, GNUTLS_NAME_DNS, "localhost", strlen ("localhost"));
  gnutls_transport_set_int (t->tls, t->fd);
  gnutls_handshake_set_timeout (t->tls, WAIT_MS);
  do
    rc = gnutls_handshake (t->tls);
  while (rc < 0 && !gnutls_error_is_fatal (rc));
  g_assert_cmpint (rc, ==, 0);
  tls_send (t, STREAM_OPEN ("localhost"));
  g_assert_true (tls_expect (t, "</stream:features>"));
  return t;
}

/* In-band registration (XEP-0077), as androidpn's client does first. */
static void
tls_register (Fixture *f, const char *user, const char *password)
{
  g_autoptr(TlsClient) t = tls_connect (f);
  g_autofree char *iq = g_strdup_printf ("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
                                         "<username>%s</username><password>%s</password>"
                                         "</query></iq>", user, password);

  g_assert_nonnull (strstr (t->in->str, "http://jabber.org/features/iq-register"));
  tls_send (t, iq);
  g_assert_true (tls_expect (t, "id='reg1'"));
  g_assert_nonnull (strstr (t->in->str, "type='result'"));
}

/* SASL PLAIN inside TLS, bind, presence. */
static TlsClient *
tls_login_sasl (Fixture *f, const char *user, const char *password, const char *resource)
{
  TlsClient *t = tls_connect (f);
  g_autofree char *raw = g_strdup_printf ("%c%s%c%s", 0, user, 0, password);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, 2 + strlen (user) + strlen (password));
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);
  g_autofree char *bind = g_strdup_printf ("<iq type='set' id='bind1'><bind "
                                           "xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                                           "<resource>%s</resource></bind></iq>", resource);

  g_assert_nonnull (strstr (t->in->str, "<mechanism>PLAIN</mechanism>"));
  tls_send (t, auth);
  g_assert_true (tls_expect (t, "<success"));
  g_string_truncate (t->in, 0);
  tls_send (t, STREAM_OPEN ("localhost"));
  g_assert_true (tls_expect (t, "</stream:features>"));
  tls_send (t, bind);
  g_assert_true (tls_expect (t, "</jid>"));
  tls_send (t, "<presence/>");
  g_string_truncate (t->in, 0);
  return t;
}

/* jabber:iq:auth (XEP-0078) inside TLS: get the fields, set them, then
 * presence in the same stream. */
static TlsClient *
tls_login_legacy (Fixture *f, const char *user, const char *password, const char *resource)
{
  TlsClient *t = tls_connect (f);
  g_autofree char *get = g_strdup_printf ("<iq type='get' id='auth1'><query xmlns='jabber:iq:auth'>"
                                          "<username>%s</username></query></iq>", user);
  g_autofree char *set = g_strdup_printf ("<iq type='set' id='auth2'><query xmlns='jabber:iq:auth'>"
                                          "<username>%s</username><password>%s</password>"
                                          "<resource>%s</resource></query></iq>",
                                          user, password, resource);

  g_assert_nonnull (strstr (t->in->str, "http://jabber.org/features/iq-auth"));
  tls_send (t, get);
  g_assert_true (tls_expect (t, "id='auth1'"));
  g_assert_nonnull (strstr (t->in->str, "<password/>"));
  g_assert_nonnull (strstr (t->in->str, "<resource/>"));
  tls_send (t, set);
  g_assert_true (tls_expect (t, "id='auth2'"));
  g_assert_null (strstr (t->in->str, "<error"));
  tls_send (t, "<presence/>");
  g_string_truncate (t->in, 0);
  return t;
}

/* Posts through androidpn's console form and waits for the IQ at @t,
 * which answers nothing: the state stays queued. */
static void
form_post_reaches (Fixture *f, TlsClient *t, const char *user)
{
  g_autofree char *form = g_strdup_printf ("action=send&broadcast=N&username=%s"
                                           "&title=Old+style&message=caf%%C3%%A9+%%26+co"
                                           "&uri=http%%3A%%2F%%2Fexample.com%%2F", user);
  g_autoptr(Reply) r = call_typed (f, "POST", "/notification.do", TOKEN,
                                   "application/x-www-form-urlencoded", form);
  g_autofree char *jid = g_strdup_printf ("%s@localhost", user);
  g_autofree char *idn = NULL;
  const char *id;

  assert_status (r, 201);
  id = json_object_get_string_member (json_node_get_object (r->json), "id");
  idn = g_strdup_printf ("<id>%s</id>", id);
  g_assert_true (tls_expect (t, idn));
  g_assert_true (tls_expect (t, "</iq>"));
  g_assert_nonnull (strstr (t->in->str, NOTE_NEEDLE));
  g_assert_nonnull (strstr (t->in->str, "<apiKey>" API_KEY "</apiKey>"));
  g_assert_nonnull (strstr (t->in->str, "<title>Old style</title>"));
  g_assert_nonnull (strstr (t->in->str, "<message>café &amp; co</message>"));
  g_assert_nonnull (strstr (t->in->str, "<uri>http://example.com/</uri>"));
  assert_state (f, id, jid, "queued", 1);
}

static void
test_androidpn_sasl (Fixture *f, gconstpointer unused)
{
  tls_register (f, "droid", "droid-pass");
  g_autoptr(TlsClient) t = tls_login_sasl (f, "droid", "droid-pass", "AndroidpnClient");

  form_post_reaches (f, t, "droid");
}

static void
test_androidpn_legacy (Fixture *f, gconstpointer unused)
{
  tls_register (f, "oldie", "oldie-pass");
  g_autoptr(TlsClient) t = tls_login_legacy (f, "oldie", "oldie-pass", "AndroidpnClient");

  form_post_reaches (f, t, "oldie");
  /* A wrong password: not-authorized, and the stream stays usable. */
  {
    g_autoptr(TlsClient) w = tls_connect (f);
    tls_send (w, "<iq type='set' id='bad1'><query xmlns='jabber:iq:auth'><username>oldie"
                 "</username><password>wrong</password><resource>r</resource></query></iq>");
    g_assert_true (tls_expect (w, "id='bad1'"));
    g_assert_true (tls_expect (w, "<not-authorized"));
  }
}

/* Outside TLS legacy_auth offers nothing and answers not-allowed; a
 * pre-auth iq of another namespace still goes where it went (register);
 * and with allow_insecure it works on plain TCP. */
static void
test_legacy_insecure (Fixture *f, gconstpointer unused)
{
  add_users (f, (const char *[]) { "plain", NULL });
  {
    g_autoptr(Client) c = client_connect (&f->d);
    client_send (c, STREAM_OPEN ("localhost"));
    g_assert_true (client_expect_features (c));
    g_assert_null (strstr (c->in->str, "features/iq-auth"));
    client_send (c, "<iq type='get' id='a1'><query xmlns='jabber:iq:auth'/></iq>");
    g_assert_true (client_expect (c, "<not-allowed"));
    client_send (c, "<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>");
    g_assert_true (client_expect (c, "id='r1'"));
    /* Any other pre-auth iq still closes the stream. */
    client_send (c, "<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>");
    g_assert_true (client_expect (c, "not-authorized"));
    g_assert_true (client_expect_closed (c));
  }
}

static void
test_legacy_allow_insecure (Fixture *f, gconstpointer unused)
{
  add_users (f, (const char *[]) { "plain", NULL });
  g_autoptr(Client) c = client_connect (&f->d);

  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  g_assert_nonnull (strstr (c->in->str, "features/iq-auth"));
  client_send (c, "<iq type='set' id='a2'><query xmlns='jabber:iq:auth'><username>plain"
                  "</username><password>secret-pass</password><resource>old</resource>"
                  "</query></iq>");
  g_assert_true (client_expect (c, "id='a2'"));
  g_assert_nonnull (strstr (c->in->str, "type='result'"));
  g_string_truncate (c->in, 0);
  /* Same stream, no restart: a ping to the server is answered. */
  client_send (c, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (c, "id='p1'"));
  g_assert_nonnull (strstr (c->in->str, "type='result'"));
  g_assert_true (mynad_wait_log (&f->d, "logged in as plain@localhost/old by legacy", WAIT_MS));
}

/* One jabber:iq:auth login on a fresh plain connection (allow_insecure);
 * TRUE when the answer holds @needle (an error condition, or
 * "type='result'"). */
static gboolean
legacy_attempt_from (Fixture *f, const char *source, const char *user, const char *password,
                     const char *needle)
{
  g_autoptr(Client) c = g_new0 (Client, 1);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (f->d.port) };
  struct sockaddr_in from = { .sin_family = AF_INET };
  g_autofree char *set = g_strdup_printf ("<iq type='set' id='la'><query xmlns='jabber:iq:auth'>"
                                          "<username>%s</username><password>%s</password>"
                                          "<resource>r</resource></query></iq>", user, password);

  /* Any 127/8 source reaches the listener on 127.0.0.1. */
  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  inet_pton (AF_INET, source, &from.sin_addr);
  c->fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  c->in = g_string_new (NULL);
  g_assert_cmpint (bind (c->fd, (struct sockaddr *) &from, sizeof from), ==, 0);
  g_assert_cmpint (connect (c->fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  g_string_truncate (c->in, 0);
  client_send (c, set);
  g_assert_true (client_expect (c, "id='la'"));
  if (strstr (needle, "type=") == NULL)
    return client_expect (c, needle);
  return strstr (c->in->str, needle) != NULL;
}

static gboolean
legacy_attempt (Fixture *f, const char *user, const char *password, const char *needle)
{
  return legacy_attempt_from (f, "127.0.0.1", user, password, needle);
}

/* legacy_auth throttles as SASL does: after max_failures (3) wrong
 * passwords on one account from one address, that address is refused
 * for that account (policy-violation), the right password too; another
 * account from that address still logs in until the address's own
 * limit (max_failures_per_address, 5) refuses everything. */
static void
test_legacy_throttle (Fixture *f, gconstpointer unused)
{
  add_users (f, (const char *[]) { "victim", "other", "third", NULL });
  for (guint i = 0; i < 3; i++)
    g_assert_true (legacy_attempt (f, "victim", "guess", "<not-authorized"));
  g_assert_true (legacy_attempt (f, "victim", "secret-pass", "<policy-violation"));
  g_assert_true (mynad_wait_log (&f->d, "legacy authentication as victim refused: too many "
                                 "failures on it", WAIT_MS));
  g_assert_false (mynad_wait_log (&f->d, "logged in as victim@localhost", 0));
  /* Another account from the same address: fine (3 failures of 5). */
  g_assert_true (legacy_attempt (f, "other", "secret-pass", "type='result'"));
  /* Two more failures on a third account: the address is at 5. */
  for (guint i = 0; i < 2; i++)
    g_assert_true (legacy_attempt (f, "third", "guess", "<not-authorized"));
  g_assert_true (legacy_attempt (f, "other", "secret-pass", "<policy-violation"));
  g_assert_true (mynad_wait_log (&f->d, "too many failures from", WAIT_MS));
}

/* The per-account delay: failures on an account from several addresses
 * (max_failures 2: two from each, each pair then refused) slow every
 * answer on it, from any address — the owner's right password from a
 * third address too, which still gets in. */
static void
test_legacy_account_delay (Fixture *f, gconstpointer unused)
{
  add_users (f, (const char *[]) { "victim", NULL });
  g_assert_true (legacy_attempt_from (f, "127.0.0.2", "victim", "guess", "<not-authorized"));
  g_assert_true (legacy_attempt_from (f, "127.0.0.2", "victim", "guess", "<not-authorized"));
  g_assert_true (legacy_attempt_from (f, "127.0.0.2", "victim", "secret-pass",
                                      "<policy-violation"));
  g_assert_true (legacy_attempt_from (f, "127.0.0.3", "victim", "guess", "<not-authorized"));
  g_assert_true (mynad_wait_log (&f->d, "127.0.0.3: legacy answer on 'victim' delayed 500 ms",
                                 WAIT_MS));
  g_assert_true (legacy_attempt_from (f, "127.0.0.4", "victim", "secret-pass", "type='result'"));
  g_assert_true (mynad_wait_log (&f->d, "127.0.0.4: legacy answer on 'victim' delayed 1000 ms",
                                 WAIT_MS));
  g_assert_true (mynad_wait_log (&f->d, "logged in as victim@localhost/r by legacy", WAIT_MS));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/push/online-delivered", Fixture, NULL, setup, test_online_delivered, teardown);
  g_test_add ("/push/offline-next-login", Fixture, NULL, setup, test_offline_next_login, teardown);
  g_test_add ("/push/offline-across-restart", Fixture, NULL, setup, test_offline_across_restart,
              teardown);
  g_test_add ("/push/broadcast", Fixture, NULL, setup, test_broadcast, teardown);
  g_test_add ("/push/max-attempts", Fixture, NULL, setup, test_max_attempts, teardown);
  g_test_add ("/push/sm-acked", Fixture, NULL, setup_sm, test_sm_acked, teardown);
  g_test_add ("/push/sweep-once", Fixture, SWEEP_CONF, setup, test_sweep_once, teardown);
  g_test_add ("/push/refusals", Fixture, NULL, setup, test_refusals, teardown);
  g_test_add ("/push/androidpn/sasl-tls", Fixture, NULL, setup, test_androidpn_sasl, teardown);
  g_test_add ("/push/androidpn/legacy-auth-tls", Fixture, NULL, setup_legacy, test_androidpn_legacy,
              teardown);
  g_test_add ("/push/legacy-auth/refused-insecure", Fixture, NULL, setup_legacy,
              test_legacy_insecure, teardown);
  g_test_add ("/push/legacy-auth/allow-insecure", Fixture,
              "[module:legacy_auth]\nallow_insecure = true\n", setup_legacy,
              test_legacy_allow_insecure, teardown);
  g_test_add ("/push/legacy-auth/throttle", Fixture,
              "[module:legacy_auth]\nallow_insecure = true\nmax_failures = 3\n"
              "max_failures_per_address = 5\n", setup_legacy, test_legacy_throttle, teardown);
  g_test_add ("/push/legacy-auth/account-delay", Fixture,
              "[module:legacy_auth]\nallow_insecure = true\nmax_failures = 2\n",
              setup_legacy, test_legacy_account_delay, teardown);
  return g_test_run ();
}
