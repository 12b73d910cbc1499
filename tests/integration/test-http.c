/* test-http: the HTTP side and the rest module against a real mynad with an
 * http listener on an ephemeral port, driven by libsoup's client — bearer
 * tokens (none, wrong, right, and the API disabled when no token is set),
 * accounts created, listed and deleted over HTTP and checked by logging in
 * over XMPP, messages sent over HTTP to an online user (delivered at once)
 * and to an offline one (stored, delivered at login), the status and
 * sessions endpoints, the refusals: 404, 405, 409, 413, malformed and
 * hostile bodies — a request still being answered when the server is
 * told to stop, which gets its answer — and what was answered surviving
 * a kill -9.  The limits of the HTTP side, over raw sockets: connections
 * closed by the client leave no descriptor behind, slow headers time out,
 * an over-limit or unauthenticated request is answered before its body is
 * sent, the caps per address and in all, and the listener surviving
 * descriptor exhaustion.
 *
 * Every wait is bounded (WAIT_MS): the XMPP side through the stanza peers
 * of services-harness.h, the HTTP side through the session's timeout. */
#include "services-harness.h"

#include <myna/version.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>
#include <sys/resource.h>
#include <sys/un.h>

#define TOKEN   "test-token-0123456789"
#define MODULES "disco;ping;version;auth;bind;roster;presence;offline;rest"

#define HTTP_LISTENER "[listener:http]\nkind = http\naddress = 127.0.0.1\nport = 0\n"
#define WITH_TOKEN    "[module:rest]\ntoken = " TOKEN "\nmin_password_length = 4\n"

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

/* @extra: [global] keys (overriding the harness's), then the rest
 * module's section (with or without a token). */
static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (extra, MYNAD_PLAIN_AUTH, HTTP_LISTENER, NULL);

  f->d.modules = MODULES;
  mynad_start (&f->d, conf);
  f->base = g_strdup_printf ("http://127.0.0.1:%u", http_port (&f->d));
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
  JsonNode           *json;      /* NULL when the body is not JSON */
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

/* Sends @method @path with @token (NULL: none) and @body (NULL: none). */
static Reply *
call_len (Fixture *f, const char *method, const char *path, const char *token,
          const char *body, gsize len)
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
      g_autoptr(GBytes) bytes = g_bytes_new (body, len);
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
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
  return call_len (f, method, path, token, body, body != NULL ? strlen (body) : 0);
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
      g_assert_true (JSON_NODE_HOLDS_OBJECT (r->json));
      g_assert_nonnull (json_object_get_string_member_with_default (json_node_get_object (r->json),
                                                                    "error", NULL));
      g_assert_cmpstr (soup_message_headers_get_content_type (r->headers, NULL), ==,
                       "application/json");
    }
}

static const char *
member_string (Reply *r, const char *name)
{
  g_assert_nonnull (r->json);
  return json_object_get_string_member_with_default (json_node_get_object (r->json), name, NULL);
}

static gint64
member_int (Reply *r, const char *name)
{
  g_assert_nonnull (r->json);
  return json_object_get_int_member_with_default (json_node_get_object (r->json), name, -1);
}

/* Whether the array member @name holds the string @value. */
static gboolean
member_has (Reply *r, const char *name, const char *value)
{
  JsonArray *array;

  g_assert_nonnull (r->json);
  array = json_object_get_array_member (json_node_get_object (r->json), name);
  g_assert_nonnull (array);
  for (guint i = 0; i < json_array_get_length (array); i++)
    if (g_strcmp0 (json_array_get_string_element (array, i), value) == 0)
      return TRUE;
  return FALSE;
}

static void
create_user (Fixture *f, const char *user, const char *password)
{
  g_autofree char *body = g_strdup_printf ("{\"user\": \"%s\", \"password\": \"%s\"}", user,
                                           password);
  g_autoptr(Reply) r = call (f, "POST", "/api/v1/users", TOKEN, body);

  assert_status (r, 201);
}

/* Logs in over XMPP and sends initial presence. */
static Peer *
login_online (Fixture *f, const char *user, const char *password, const char *resource)
{
  Client *c = client_login (&f->d, user, password, resource);
  g_autofree char *from = g_strdup_printf ("from='%s@localhost/%s'", user, resource);
  g_autoptr(MynaStanza) echo = NULL;
  Peer *p;

  g_assert_nonnull (c);
  p = peer_new (c, TRUE);
  peer_send (p, "<presence/>");
  echo = peer_expect (p, "presence", from, NULL);
  g_assert_nonnull (echo);
  return p;
}

/* ---- raw HTTP ---------------------------------------------------------------------- */

/* A plain TCP connection to the http listener, or NULL if refused. */
static Client *
http_connect (Fixture *f)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (http_port (&f->d)) };
  Client *c = g_new0 (Client, 1);

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  c->in = g_string_new (NULL);
  c->fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (c->fd, >=, 0);
  if (connect (c->fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      g_test_message ("connect: %s", g_strerror (errno));
      client_free (c);
      return NULL;
    }
  return c;
}

#define STATUS_REQUEST "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n" \
                       "Authorization: Bearer " TOKEN "\r\n\r\n"

/* GET /api/v1/status on a new connection: whether it was answered 200. */
static gboolean
status_ok (Fixture *f)
{
  g_autoptr(Client) c = http_connect (f);

  if (c == NULL)
    return FALSE;
  client_send (c, STATUS_REQUEST);
  return client_expect (c, "\"sessions\"") && g_str_has_prefix (c->in->str, "HTTP/1.1 200 ");
}

static guint
mynad_fds (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/fd",
                                           g_subprocess_get_identifier (f->d.proc));
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Waits (bounded) until mynad holds at most @max descriptors; returns the
 * last count.  Closing is asynchronous to the client, so this polls. */
static guint
wait_fds_at_most (Fixture *f, guint max)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  guint n;

  while ((n = mynad_fds (f)) > max && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  return n;
}

/* Waits (bounded) until mynad holds at least @min descriptors. */
static guint
wait_fds_at_least (Fixture *f, guint min)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  guint n;

  while ((n = mynad_fds (f)) < min && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  return n;
}

/* mynad's CPU time so far, in seconds. */
static double
mynad_cpu (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/stat",
                                           g_subprocess_get_identifier (f->d.proc));
  g_autofree char *stat = NULL;
  g_auto(GStrv) fields = NULL;

  g_assert_true (g_file_get_contents (path, &stat, NULL, NULL));
  /* After "pid (comm) ": state is field 3, utime 14, stime 15. */
  fields = g_strsplit (strrchr (stat, ')') + 2, " ", -1);
  return (g_ascii_strtod (fields[11], NULL) + g_ascii_strtod (fields[12], NULL))
         / (double) sysconf (_SC_CLK_TCK);
}

static guint
count_lines (const char *log, const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (log, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* ---- tests ------------------------------------------------------------------------- */

static void
test_auth (Fixture *f, gconstpointer unused)
{
  g_autoptr(Reply) none = call (f, "GET", "/api/v1/status", NULL, NULL);
  g_autoptr(Reply) wrong = call (f, "GET", "/api/v1/status", "not-" TOKEN, NULL);
  g_autoptr(Reply) prefix = call (f, "GET", "/api/v1/status", "test-token", NULL);
  g_autoptr(Reply) longer = call (f, "GET", "/api/v1/status", TOKEN "x", NULL);
  g_autoptr(Reply) ok = call (f, "GET", "/api/v1/status", TOKEN, NULL);
  g_autoptr(Reply) users = call (f, "POST", "/api/v1/users", "wrong",
                                 "{\"user\": \"mallory\", \"password\": \"secret\"}");
  g_autoptr(Reply) listed = call (f, "GET", "/api/v1/users", TOKEN, NULL);
  g_autoptr(SoupMessage) msg = NULL;

  assert_status (none, 401);
  g_assert_cmpstr (soup_message_headers_get_one (none->headers, "WWW-Authenticate"), ==,
                   "Bearer realm=\"myna\"");
  assert_status (wrong, 401);
  assert_status (prefix, 401);
  assert_status (longer, 401);
  /* A token under another scheme is no bearer token. */
  {
    g_autofree char *url = g_strconcat (f->base, "/api/v1/status", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) answer = NULL;

    msg = soup_message_new ("GET", url);
    soup_message_headers_append (soup_message_get_request_headers (msg), "Authorization",
                                 "Basic " TOKEN);
    answer = soup_session_send_and_read (f->session, msg, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (soup_message_get_status (msg), ==, 401);
  }
  assert_status (ok, 200);
  g_assert_cmpstr (member_string (ok, "version"), ==, MYNA_VERSION_STRING);
  g_assert_cmpstr (member_string (ok, "host"), ==, "localhost");
  g_assert_cmpint (member_int (ok, "sessions"), ==, 0);
  /* Refused requests change nothing. */
  assert_status (users, 401);
  assert_status (listed, 200);
  g_assert_false (member_has (listed, "users", "mallory"));
}

static void
test_routing (Fixture *f, gconstpointer unused)
{
  g_autoptr(Reply) nowhere = call (f, "GET", "/nowhere", TOKEN, NULL);
  g_autoptr(Reply) root = call (f, "GET", "/", NULL, NULL);
  g_autoptr(Reply) unknown = call (f, "GET", "/api/v1/nothing", TOKEN, NULL);
  g_autoptr(Reply) sibling = call (f, "GET", "/api/v10/status", TOKEN, NULL);
  g_autoptr(Reply) post_status = call (f, "POST", "/api/v1/status", TOKEN, "{}");
  g_autoptr(Reply) get_message = call (f, "GET", "/api/v1/message", TOKEN, NULL);
  g_autoptr(Reply) put_users = call (f, "PUT", "/api/v1/users", TOKEN, "{}");
  g_autoptr(Reply) get_user = call (f, "GET", "/api/v1/users/bob", TOKEN, NULL);
  g_autoptr(Reply) nested = call (f, "DELETE", "/api/v1/users/bob/x", TOKEN, NULL);
  g_autoptr(Reply) other_host = call (f, "GET", "/api/v1/users?host=example.org", TOKEN, NULL);

  assert_status (nowhere, 404);
  assert_status (root, 404);
  assert_status (unknown, 404);
  assert_status (sibling, 404);
  assert_status (post_status, 405);
  g_assert_cmpstr (soup_message_headers_get_one (post_status->headers, "Allow"), ==, "GET");
  assert_status (get_message, 405);
  g_assert_cmpstr (soup_message_headers_get_one (get_message->headers, "Allow"), ==, "POST");
  assert_status (put_users, 405);
  g_assert_cmpstr (soup_message_headers_get_one (put_users->headers, "Allow"), ==, "GET, POST");
  assert_status (get_user, 405);
  assert_status (nested, 404);
  assert_status (other_host, 404);
}

static void
test_users (Fixture *f, gconstpointer unused)
{
  g_autoptr(Reply) again = NULL, listed = NULL, gone = NULL, deleted = NULL;
  g_autoptr(Reply) twice = NULL, after = NULL, bad_name = NULL, short_pw = NULL;
  g_autoptr(Reply) created = call (f, "POST", "/api/v1/users", TOKEN,
                                   "{\"user\": \"Dave\", \"password\": \"pw-dave\", "
                                   "\"host\": \"localhost\"}");
  Client *c;

  assert_status (created, 201);
  g_assert_cmpstr (member_string (created, "jid"), ==, "dave@localhost");
  g_assert_cmpstr (soup_message_headers_get_one (created->headers, "Location"), ==,
                   "/api/v1/users/dave");
  again = call (f, "POST", "/api/v1/users", TOKEN,
                "{\"user\": \"dave\", \"password\": \"other-pw\"}");
  assert_status (again, 409);
  listed = call (f, "GET", "/api/v1/users", TOKEN, NULL);
  assert_status (listed, 200);
  g_assert_true (member_has (listed, "users", "dave"));

  /* The account is real: it logs in over XMPP, with its first password. */
  c = client_login (&f->d, "dave", "pw-dave", "res");
  g_assert_nonnull (c);
  client_free (c);
  g_assert_null (client_login (&f->d, "dave", "other-pw", "res"));

  deleted = call (f, "DELETE", "/api/v1/users/dave", TOKEN, NULL);
  assert_status (deleted, 204);
  g_assert_cmpstr (deleted->text, ==, "");
  g_assert_null (client_login (&f->d, "dave", "pw-dave", "res"));
  twice = call (f, "DELETE", "/api/v1/users/dave", TOKEN, NULL);
  assert_status (twice, 404);
  after = call (f, "GET", "/api/v1/users", TOKEN, NULL);
  g_assert_false (member_has (after, "users", "dave"));
  gone = call (f, "DELETE", "/api/v1/users/%40bad", TOKEN, NULL);
  assert_status (gone, 400);

  bad_name = call (f, "POST", "/api/v1/users", TOKEN,
                   "{\"user\": \"a b\", \"password\": \"secret\"}");
  assert_status (bad_name, 400);
  short_pw = call (f, "POST", "/api/v1/users", TOKEN, "{\"user\": \"eve\", \"password\": \"abc\"}");
  assert_status (short_pw, 400);
}

/* Deleting an account ends its sessions. */
static void
test_delete_online (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) p = NULL;
  g_autoptr(Reply) deleted = NULL, status = NULL;

  create_user (f, "dave", "pw-dave");
  p = login_online (f, "dave", "pw-dave", "phone");
  deleted = call (f, "DELETE", "/api/v1/users/dave", TOKEN, NULL);
  assert_status (deleted, 204);
  g_assert_true (peer_expect_closed (p));
  g_assert_cmpstr (p->stream_error, ==, "not-authorized");
  status = call (f, "GET", "/api/v1/status", TOKEN, NULL);
  g_assert_cmpint (member_int (status, "sessions"), ==, 0);
}

static void
test_message_online (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) p = NULL;
  g_autoptr(MynaStanza) got = NULL, second = NULL;
  g_autoptr(Reply) sent = NULL, sessions = NULL, status = NULL, as_admin = NULL;
  g_autofree char *id = NULL;

  create_user (f, "dave", "pw-dave");
  p = login_online (f, "dave", "pw-dave", "phone");
  sessions = call (f, "GET", "/api/v1/sessions", TOKEN, NULL);
  assert_status (sessions, 200);
  g_assert_true (member_has (sessions, "sessions", "dave@localhost/phone"));
  status = call (f, "GET", "/api/v1/status", TOKEN, NULL);
  g_assert_cmpint (member_int (status, "sessions"), ==, 1);

  sent = call (f, "POST", "/api/v1/message", TOKEN,
               "{\"to\": \"dave@localhost\", \"body\": \"hello <over> & http \\u00e9\","
               " \"subject\": \"greeting\"}");
  assert_status (sent, 202);
  g_assert_cmpint (member_int (sent, "online"), ==, 1);
  g_assert_cmpstr (member_string (sent, "to"), ==, "dave@localhost");
  id = g_strdup_printf ("id='%s'", member_string (sent, "id"));
  got = peer_expect (p, "message", id, NULL);
  g_assert_nonnull (got);
  g_assert_cmpstr (myna_stanza_get_from (got), ==, "localhost");
  g_assert_cmpstr (myna_stanza_get_type (got), ==, "chat");
  g_assert_cmpstr (myna_stanza_get_child_text (got, "body"), ==, "hello <over> & http é");
  g_assert_cmpstr (myna_stanza_get_child_text (got, "subject"), ==, "greeting");

  as_admin = call (f, "POST", "/api/v1/message", TOKEN,
                   "{\"to\": \"dave@localhost/phone\", \"from\": \"admin@localhost/api\","
                   " \"type\": \"headline\", \"body\": \"news\"}");
  assert_status (as_admin, 202);
  second = peer_expect (p, "message", "news", NULL);
  g_assert_nonnull (second);
  g_assert_cmpstr (myna_stanza_get_from (second), ==, "admin@localhost/api");
  g_assert_cmpstr (myna_stanza_get_type (second), ==, "headline");
}

static void
test_message_offline (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) p = NULL;
  g_autoptr(MynaStanza) got = NULL;
  g_autoptr(Reply) sent = NULL;

  create_user (f, "erin", "pw-erin");
  sent = call (f, "POST", "/api/v1/message", TOKEN,
               "{\"to\": \"erin@localhost\", \"body\": \"while you were out\"}");
  assert_status (sent, 202);
  g_assert_cmpint (member_int (sent, "online"), ==, 0);

  /* Stored: it comes with initial presence, stamped with a delay. */
  p = login_online (f, "erin", "pw-erin", "laptop");
  got = peer_expect (p, "message", "while you were out", NULL);
  g_assert_nonnull (got);
  g_assert_cmpstr (myna_stanza_get_from (got), ==, "localhost");
  g_assert_nonnull (myna_stanza_get_child (got, "delay", "urn:xmpp:delay"));
}

/* Every 201, 204 and 202 the API gave survives a kill -9 right after the
 * last one: the accounts it created and deleted, the messages it stored
 * for an offline user. */
#define DURABLE_MESSAGES 40

static void
test_durability (Fixture *f, gconstpointer unused)
{
  g_autoptr(Peer) p = NULL;
  g_autoptr(Reply) users = NULL;
  g_autoptr(Reply) gone = NULL;

  create_user (f, "erin", "pw-erin");
  create_user (f, "gwen", "pw-gwen");
  create_user (f, "hal", "pw-hal");
  gone = call (f, "DELETE", "/api/v1/users/hal", TOKEN, NULL);
  assert_status (gone, 204);
  for (guint i = 0; i < DURABLE_MESSAGES; i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"to\": \"erin@localhost\", "
                                               "\"body\": \"stored %u.\"}", i);
      g_autoptr(Reply) sent = call (f, "POST", "/api/v1/message", TOKEN, body);

      assert_status (sent, 202);
    }
  mynad_kill_restart (&f->d);
  g_free (f->base);
  f->base = g_strdup_printf ("http://127.0.0.1:%u", http_port (&f->d));

  users = call (f, "GET", "/api/v1/users", TOKEN, NULL);
  assert_status (users, 200);
  g_assert_true (member_has (users, "users", "erin"));
  g_assert_true (member_has (users, "users", "gwen"));
  g_assert_false (member_has (users, "users", "hal"));
  p = login_online (f, "erin", "pw-erin", "laptop");
  for (guint i = 0; i < DURABLE_MESSAGES; i++)
    {
      g_autofree char *text = g_strdup_printf ("stored %u.", i);
      g_autoptr(MynaStanza) got = peer_expect (p, "message", text, NULL);

      if (got == NULL)
        g_test_message ("message %u of %u was answered 202 and lost", i, DURABLE_MESSAGES);
      g_assert_nonnull (got);
    }
}

static void
test_refusals (Fixture *f, gconstpointer unused)
{
  g_autofree char *big = g_malloc (70 * 1024);
  g_autoptr(Reply) too_big = NULL, malformed = NULL, not_object = NULL, nul = NULL;
  g_autoptr(Reply) nobody = NULL, remote = NULL, to_host = NULL, spoof = NULL;
  g_autoptr(Reply) bad_type = NULL, empty = NULL, deep = NULL, after = NULL;

  create_user (f, "dave", "pw-dave");
  memset (big, 'a', 70 * 1024);
  memcpy (big, "{\"to\": \"dave@localhost\", \"body\": \"", 35);
  too_big = call_len (f, "POST", "/api/v1/message", TOKEN, big, 70 * 1024);
  assert_status (too_big, 413);

  malformed = call (f, "POST", "/api/v1/message", TOKEN, "{\"to\": \"dave@localhost\", body: 1");
  assert_status (malformed, 400);
  g_assert_nonnull (strstr (member_string (malformed, "error"), "JSON"));
  not_object = call (f, "POST", "/api/v1/message", TOKEN, "[\"dave@localhost\"]");
  assert_status (not_object, 400);
  nul = call (f, "POST", "/api/v1/message", TOKEN,
              "{\"to\": \"dave@localhost\", \"body\": \"a\\u0000b\"}");
  assert_status (nul, 400);
  deep = call (f, "POST", "/api/v1/message", TOKEN,
               "{\"x\": [[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]}");
  assert_status (deep, 400);
  empty = call (f, "POST", "/api/v1/message", TOKEN, NULL);
  assert_status (empty, 400);
  bad_type = call (f, "POST", "/api/v1/message", TOKEN,
                   "{\"to\": \"dave@localhost\", \"type\": \"groupchat\", \"body\": \"x\"}");
  assert_status (bad_type, 400);
  nobody = call (f, "POST", "/api/v1/message", TOKEN,
                 "{\"to\": \"nobody@localhost\", \"body\": \"x\"}");
  assert_status (nobody, 404);
  remote = call (f, "POST", "/api/v1/message", TOKEN,
                 "{\"to\": \"someone@example.org\", \"body\": \"x\"}");
  assert_status (remote, 404);
  to_host = call (f, "POST", "/api/v1/message", TOKEN, "{\"to\": \"localhost\", \"body\": \"x\"}");
  assert_status (to_host, 400);
  spoof = call (f, "POST", "/api/v1/message", TOKEN,
                "{\"to\": \"dave@localhost\", \"from\": \"x@example.org\", \"body\": \"x\"}");
  assert_status (spoof, 400);

  /* The server is still there and answering. */
  after = call (f, "GET", "/api/v1/status", TOKEN, NULL);
  assert_status (after, 200);
}

/* The module's route goes with it, and comes back with it; a reload keeps
 * it. */
static void
test_unload_reload (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL, *out2 = NULL, *out3 = NULL;
  g_autoptr(Reply) before = call (f, "GET", "/api/v1/status", TOKEN, NULL);
  g_autoptr(Reply) unloaded = NULL, reloaded = NULL, loaded = NULL;

  assert_status (before, 200);
  g_assert_cmpint (mynactl (&f->d, &out, "unload", "rest", NULL), ==, 0);
  unloaded = call (f, "GET", "/api/v1/status", TOKEN, NULL);
  assert_status (unloaded, 404);
  g_assert_cmpstr (member_string (unloaded, "error"), ==, "no such resource");
  g_assert_cmpint (mynactl (&f->d, &out2, "load", "rest", NULL), ==, 0);
  loaded = call (f, "GET", "/api/v1/status", TOKEN, NULL);
  assert_status (loaded, 200);
  g_assert_cmpint (mynactl (&f->d, &out3, "reload", "rest", NULL), ==, 0);
  reloaded = call (f, "GET", "/api/v1/users", TOKEN, NULL);
  assert_status (reloaded, 200);
}

/* A module that adds an HTTP route and never removes it (routetest): the
 * core removes the route when the module unloads, so the prefix answers
 * 404 and nothing calls into the closed .so; loaded again, it answers. */
static void
test_route_removed_on_unload (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL, *out2 = NULL, *out3 = NULL;
  g_autoptr(Reply) loaded = NULL, unloaded = NULL, again = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "load", "routetest", NULL), ==, 0);
  loaded = call (f, "GET", "/routetest", NULL, NULL);
  g_assert_cmpuint (loaded->status, ==, 200);
  g_assert_cmpstr (loaded->text, ==, "routetest");
  g_assert_cmpint (mynactl (&f->d, &out2, "unload", "routetest", NULL), ==, 0);
  g_assert_true (mynad_wait_log (&f->d, "HTTP route /routetest removed", WAIT_MS));
  unloaded = call (f, "GET", "/routetest", NULL, NULL);
  assert_status (unloaded, 404);
  g_assert_cmpint (mynactl (&f->d, &out3, "load", "routetest", NULL), ==, 0);
  again = call (f, "GET", "/routetest", NULL, NULL);
  g_assert_cmpuint (again->status, ==, 200);
}

/* A request still being answered when the server is told to stop gets its
 * answer, and what it did is kept. */
static void
test_graceful_stop (Fixture *f, gconstpointer unused)
{
  const char *body = "{\"user\": \"slow\", \"password\": \"pw-slow\"}";
  g_autofree char *request = g_strdup_printf ("POST /api/v1/users HTTP/1.1\r\n"
                                              "Host: 127.0.0.1\r\n"
                                              "Authorization: Bearer " TOKEN "\r\n"
                                              "Content-Type: application/json\r\n"
                                              "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n%s",
                                              strlen (body), body);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (http_port (&f->d)) };
  g_autoptr(Client) c = g_new0 (Client, 1);
  g_autoptr(Reply) listed = NULL;

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  c->in = g_string_new (NULL);
  c->fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (connect (c->fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  client_send (c, request);
  /* The password is being hashed (half a million iterations) off the main loop. */
  g_assert_true (mynad_wait_log (&f->d, "creating account slow@localhost", WAIT_MS));
  g_subprocess_send_signal (f->d.proc, SIGTERM);
  g_assert_true (mynad_wait_log (&f->d, "stopping: refusing new requests; 1 in progress", WAIT_MS));
  g_assert_true (client_expect (c, "\r\n\r\n{"));
  g_assert_true (g_str_has_prefix (c->in->str, "HTTP/1.1 201 "));
  g_assert_true (client_expect_closed (c));

  mynad_restart (&f->d);
  g_free (f->base);
  f->base = g_strdup_printf ("http://127.0.0.1:%u", http_port (&f->d));
  listed = call (f, "GET", "/api/v1/users", TOKEN, NULL);
  assert_status (listed, 200);
  g_assert_true (member_has (listed, "users", "slow"));
}

/* No token configured: the API is disabled, whatever is presented. */
static void
test_disabled (Fixture *f, gconstpointer unused)
{
  g_autoptr(Reply) none = call (f, "GET", "/api/v1/status", NULL, NULL);
  g_autoptr(Reply) any = call (f, "GET", "/api/v1/status", "anything", NULL);
  g_autoptr(Reply) empty = call (f, "GET", "/api/v1/users", "", NULL);
  g_autoptr(Reply) create = call (f, "POST", "/api/v1/users", "x",
                                  "{\"user\": \"mallory\", \"password\": \"secret\"}");

  assert_status (none, 401);
  assert_status (any, 401);
  assert_status (empty, 401);
  assert_status (create, 401);
  g_assert_nonnull (strstr (f->d.log->str, "the REST API is disabled"));
  g_assert_null (client_login (&f->d, "mallory", "secret", "x"));
}

/* libsoup 3.2 kept, forever, every keep-alive connection the client
 * closed after its answer (curl's way): one descriptor per request. */
static void
test_no_fd_leak (Fixture *f, gconstpointer unused)
{
  guint before;

  g_assert_true (status_ok (f));
  g_assert_cmpuint (wait_fds_at_most (f, 0), >, 0);
  before = mynad_fds (f);
  for (int i = 0; i < 50; i++)
    {
      g_autoptr(Client) c = http_connect (f);
      g_assert_nonnull (c);
      client_send (c, STATUS_REQUEST);
      /* The whole answer (its body ends the JSON object); then the client
       * closes, without waiting for the server to. */
      g_assert_true (client_expect (c, "}"));
    }
  for (int i = 0; i < 50; i++)
    {
      g_autoptr(Client) c = http_connect (f);
      g_assert_nonnull (c);
      client_send (c, "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      g_assert_true (client_expect (c, "}"));
      g_assert_true (g_str_has_prefix (c->in->str, "HTTP/1.1 401 "));
    }
  g_assert_cmpuint (wait_fds_at_most (f, before), <=, before);
}

/* Headers that never end are cut off after http_header_timeout. */
static void
test_header_timeout (Fixture *f, gconstpointer unused)
{
  Client *c[5];
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < G_N_ELEMENTS (c); i++)
    {
      c[i] = http_connect (f);
      g_assert_nonnull (c[i]);
      client_send (c[i], "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    }
  for (guint i = 0; i < G_N_ELEMENTS (c); i++)
    {
      g_assert_true (client_expect_closed (c[i]));
      g_assert_true (g_str_has_prefix (c[i]->in->str, "HTTP/1.1 408 "));
      client_free (c[i]);
    }
  /* Not before the timeout (1 s; the timer wheel never fires early). */
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 1000 * 1000);
  g_assert_true (status_ok (f));
}

/* A declared body over http_max_body: 413 before a byte of it is sent. */
static void
test_declared_too_big (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = http_connect (f);

  g_assert_nonnull (c);
  client_send (c, "POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Authorization: Bearer " TOKEN "\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n");
  g_assert_true (client_expect (c, "over the limit"));
  g_assert_true (g_str_has_prefix (c->in->str, "HTTP/1.1 413 "));
  g_assert_nonnull (strstr (c->in->str, "Connection: close\r\n"));
  g_assert_true (client_expect_closed (c));
  g_assert_true (status_ok (f));
}

/* No valid token: 401 once the headers are in, the body never awaited. */
static void
test_unauthorized_body (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = http_connect (f);
  g_autoptr(Client) wrong = http_connect (f);

  g_assert_nonnull (c);
  g_assert_nonnull (wrong);
  client_send (c, "POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n");
  client_send (wrong, "POST /api/v1/message HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Authorization: Bearer not-" TOKEN "\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n1000\r\n{\"to\": ");
  g_assert_true (client_expect (c, "bearer token is required"));
  g_assert_true (g_str_has_prefix (c->in->str, "HTTP/1.1 401 "));
  g_assert_nonnull (strstr (c->in->str, "WWW-Authenticate: Bearer realm=\"myna\"\r\n"));
  g_assert_true (client_expect_closed (c));
  g_assert_true (client_expect (wrong, "bearer token is required"));
  g_assert_true (g_str_has_prefix (wrong->in->str, "HTTP/1.1 401 "));
  g_assert_true (client_expect_closed (wrong));
  g_assert_true (status_ok (f));
}

/* The cap (per address, or in all: the test's data says which) refuses
 * the connection after it, and counts a closed one out. */
static void
test_connection_cap (Fixture *f, gconstpointer extra)
{
  const char *why = strstr (extra, "per_ip = 4") != NULL ? "(http_max_connections_per_ip)"
                                                         : "(http_max_connections)";
  Client *held[4];
  g_autoptr(Client) over = NULL;
  gint64 deadline;
  gboolean ok = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (held); i++)
    {
      held[i] = http_connect (f);
      g_assert_nonnull (held[i]);
    }
  over = http_connect (f);
  g_assert_nonnull (over);
  g_assert_true (client_expect_closed (over));
  g_assert_cmpuint (over->in->len, ==, 0);
  g_assert_true (mynad_wait_log (&f->d, why, WAIT_MS));
  for (guint i = 0; i < G_N_ELEMENTS (held); i++)
    g_assert_true (client_is_open (held[i]));
  /* One goes: there is room for one more once the server has seen it. */
  client_free (held[0]);
  deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  while (!ok && g_get_monotonic_time () < deadline)
    ok = status_ok (f);
  g_assert_true (ok);
  for (guint i = 1; i < G_N_ELEMENTS (held); i++)
    client_free (held[i]);
}

/* Out of descriptors, the listener pauses (one log line), and serves
 * again by itself once descriptors are free; the admin socket, with a
 * connection waiting, does not spin meanwhile. */
static void
test_fd_exhaustion (Fixture *f, gconstpointer unused)
{
  pid_t pid = (pid_t) g_ascii_strtoll (g_subprocess_get_identifier (f->d.proc), NULL, 10);
  struct sockaddr_un admin = { .sun_family = AF_UNIX };
  g_autofree char *admin_path = g_build_filename (f->d.dir, "mynad.sock", NULL);
  struct rlimit old, low;
  Client *c[40];
  int admin_fd;
  double cpu;
  guint n;

  g_assert_true (status_ok (f));
  n = wait_fds_at_most (f, 0);
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, NULL, &old), ==, 0);
  low = old;
  low.rlim_cur = n + 8;
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, &low, NULL), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (c); i++)
    {
      c[i] = http_connect (f);
      g_assert_nonnull (c[i]);
    }
  /* mynad took all it could (its last descriptor may be the listener's
   * own, which libsoup gave up on an accept error). */
  g_assert_cmpuint (wait_fds_at_least (f, n + 7), >=, n + 7);
  /* A mynactl connection waits in the admin socket's backlog: a poller
   * calling back on it in a loop would burn a core for as long. */
  g_assert_cmpuint (strlen (admin_path), <, sizeof admin.sun_path);
  strcpy (admin.sun_path, admin_path);
  admin_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (connect (admin_fd, (struct sockaddr *) &admin, sizeof admin), ==, 0);
  cpu = mynad_cpu (f);
  /* A measure over a second, not a wait for an event. */
  g_usleep (G_USEC_PER_SEC);
  cpu = mynad_cpu (f) - cpu;
  g_test_message ("mynad used %.2f s of CPU in 1 s while out of descriptors", cpu);
  g_assert_cmpfloat (cpu, <, 0.1);
  close (admin_fd);
  for (guint i = 0; i < G_N_ELEMENTS (c); i++)
    client_free (c[i]);
  /* Without raising the limit again. */
  g_assert_true (status_ok (f));
  g_assert_true (status_ok (f));
  g_assert_true (mynad_wait_log (&f->d, "accepting connections again", WAIT_MS));
  g_assert_cmpuint (count_lines (f->d.log->str, "accept: "), <=, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func, extra) \
  g_test_add (path, Fixture, extra, setup, func, teardown)
  ADD ("/http/auth", test_auth, WITH_TOKEN);
  ADD ("/http/routing", test_routing, WITH_TOKEN);
  ADD ("/http/users", test_users, WITH_TOKEN);
  ADD ("/http/delete-online", test_delete_online, WITH_TOKEN);
  ADD ("/http/message/online", test_message_online, WITH_TOKEN);
  ADD ("/http/message/offline", test_message_offline, WITH_TOKEN);
  ADD ("/http/durability", test_durability, WITH_TOKEN);
  ADD ("/http/refusals", test_refusals, WITH_TOKEN);
  ADD ("/http/unload-reload", test_unload_reload, WITH_TOKEN);
  ADD ("/http/route-removed-on-unload", test_route_removed_on_unload, WITH_TOKEN);
  ADD ("/http/graceful-stop", test_graceful_stop, "scram_iterations = 500000\n" WITH_TOKEN);
  ADD ("/http/disabled", test_disabled, "");
  ADD ("/http/limits/no-fd-leak", test_no_fd_leak, WITH_TOKEN);
  ADD ("/http/limits/header-timeout", test_header_timeout,
       "http_header_timeout = 1s\n" WITH_TOKEN);
  ADD ("/http/limits/declared-too-big", test_declared_too_big, WITH_TOKEN);
  ADD ("/http/limits/unauthorized-body", test_unauthorized_body, WITH_TOKEN);
  ADD ("/http/limits/per-ip-cap", test_connection_cap,
       "http_max_connections_per_ip = 4\n" WITH_TOKEN);
  ADD ("/http/limits/total-cap", test_connection_cap,
       "http_max_connections = 4\nhttp_max_connections_per_ip = 0\n" WITH_TOKEN);
  ADD ("/http/limits/fd-exhaustion", test_fd_exhaustion,
       "http_max_connections_per_ip = 0\n" WITH_TOKEN);
  return g_test_run ();
}
