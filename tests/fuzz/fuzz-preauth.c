/* fuzz-preauth: whole pre-authentication exchanges through the real
 * server.  One in-process MynaServer (router, auth, register, bind, disco,
 * ping, version modules; an account alice/wonderland) serves one client
 * connection per input over a socketpair, so every byte goes through the
 * connection, the XML stream, the router and the modules exactly as from
 * a socket.  The input is a sequence of client steps: stream headers, SASL
 * <auth/> and <response/> with absent, empty, "=", random or valid data
 * (PLAIN, and SCRAM client-first and client-final messages computed from
 * the server's actual challenge, so an input can log in and go on to
 * bind), <abort/>, STARTTLS, in-band registration, bind/session and IQs
 * to the server before (and after) authentication, stanzas, raw bytes.
 * After each step the main loop runs until the server is idle (password
 * checks on the workers and storage writes included).
 *
 * Invariants: no crash or sanitizer report; no GLib critical (a
 * g_return_if_fail reached from network input is a bug); the connection
 * ends cleanly when the client closes.  The auth module is unloaded and
 * loaded again before each input, so throttling state never carries over; accounts
 * that registration created are deleted after it.  FUZZ_PREAUTH_TRACE=1
 * prints what the server sent for each input. */
#include "fuzz-server.h"

#include <myna/sasl.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define NS_SASL  "urn:ietf:params:xml:ns:xmpp-sasl"
#define HOST     "localhost"
#define USER     "alice"
#define PASSWORD "wonderland"
#define MAX_STEPS 48

static MynaServer   *server;
static MynaListener *listener;
static MynaHost     *host;

/* ---- the client ------------------------------------------------------------ */

typedef struct {
  int           fd;
  GString      *in;          /* everything the server sent */
  MynaScramHash hash;        /* of the last SASL mechanism asked for */
  char         *gs2_header;  /* of the last client-first sent */
  char         *first_bare;
  gboolean      registered;  /* a registration was attempted */
} Client;

static void
client_write (Client *c, const char *data, gsize len)
{
  fuzz_write (c->fd, data, len, "FUZZ_PREAUTH_TRACE");
}

static void
client_send (Client *c, const char *text)
{
  client_write (c, text, strlen (text));
}

/* Reads what is there; TRUE if anything was. */
static gboolean
client_read (Client *c)
{
  return fuzz_read (c->fd, c->in);
}

/* Runs the main loop until the server has nothing left to do: no source
 * ready, no password check on a worker, no storage write pending, and
 * nothing more to read. */
static void
pump (Client *c)
{
  for (guint round = 0; round < 10000; round++)
    {
      gboolean busy = FALSE;

      for (guint i = 0; i < 1000 && g_main_context_iteration (NULL, FALSE); i++)
        busy = TRUE;
      if (c != NULL && client_read (c))
        busy = TRUE;
      if (myna_work_outstanding () > 0)
        {
          g_main_context_iteration (NULL, TRUE);   /* a worker wakes it */
          continue;
        }
      guint64 before = server->stanzas_out;
      myna_storage_flush (server->storage, NULL);
      if (!busy && server->stanzas_out == before && !g_main_context_pending (NULL))
        return;
    }
}

/* ---- what the client sends ------------------------------------------------- */

static const char *const headers[] = {
  "<?xml version='1.0'?><stream:stream to='" HOST "' xmlns='jabber:client' "
  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
  "version='1.0' to='" HOST "' xml:lang='en' from='" USER "@" HOST "'>",
  "<stream:stream to='" HOST "' xmlns='jabber:client' "
  "xmlns:stream='http://etherx.jabber.org/streams'>",
  "<stream:stream to='elsewhere.example' xmlns='jabber:client' "
  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
  "version='1.0'>",
  "<stream:stream to='" HOST "' xmlns='jabber:server' "
  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
  "<stream:stream to='" HOST "' xmlns='jabber:client' "
  "xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>",
  "<stream xmlns='http://etherx.jabber.org/streams' to='" HOST "' version='1.0'>",
};

static const char *const mechanisms[] = {
  "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS",
  "X-OAUTH2", "plain", "", NULL,
};

/* The SASL message of data mode @mode (see sasl_element). */
static GString *
sasl_plain_message (guint variant)
{
  static const char *const v[][3] = {
    { "", USER, PASSWORD },
    { "", USER, "wrong" },
    { USER "@" HOST, USER, PASSWORD },
    { "bob@" HOST, USER, PASSWORD },
    { "", "mallory", PASSWORD },
    { "", "ALICE", PASSWORD },
    { "", "", PASSWORD },
    { "", USER, "" },
  };
  const char *const *e = v[variant % G_N_ELEMENTS (v)];
  GString *m = g_string_new (e[0]);

  g_string_append_len (m, "", 1);
  g_string_append (m, e[1]);
  g_string_append_len (m, "", 1);
  g_string_append (m, e[2]);
  return m;
}

static GString *
scram_first_message (Client *c, guint variant)
{
  static const char *const gs2[] = { "n,,", "y,,", "p=tls-exporter,,", "n,a=" USER "@" HOST "," };
  static const char *const users[] = { USER, "mallory", "ALICE", "al=2Cice", "a=3Db" };
  const char *header = gs2[variant % G_N_ELEMENTS (gs2)];
  const char *user = users[(variant / G_N_ELEMENTS (gs2)) % G_N_ELEMENTS (users)];

  g_free (c->gs2_header);
  g_free (c->first_bare);
  c->gs2_header = g_strdup (header);
  c->first_bare = g_strdup_printf ("n=%s,r=fuzzclientnonce%u", user, variant % 3);
  GString *m = g_string_new (header);
  g_string_append (m, c->first_bare);
  return m;
}

/* The text of the last <challenge/> the server sent, decoded, or NULL. */
static char *
last_challenge (Client *c)
{
  const char *open = "<challenge xmlns='" NS_SASL "'>";
  const char *start = NULL;

  for (const char *p = c->in->str; (p = strstr (p, open)) != NULL; p++)
    start = p + strlen (open);
  if (start == NULL)
    return NULL;
  const char *end = strstr (start, "</challenge>");
  if (end == NULL)
    return NULL;
  g_autofree char *b64 = g_strndup (start, (gsize) (end - start));
  gsize len;
  guchar *raw = g_base64_decode (b64, &len);
  char *text = g_strndup ((const char *) raw, len);
  g_free (raw);
  return text;
}

static GBytes *
hmac_bytes (MynaScramHash hash, GBytes *key, const char *data)
{
  GHmac *h = g_hmac_new (hash == MYNA_SCRAM_SHA1 ? G_CHECKSUM_SHA1 : G_CHECKSUM_SHA256,
                         g_bytes_get_data (key, NULL), g_bytes_get_size (key));
  guint8 out[32];
  gsize len = sizeof out;

  g_hmac_update (h, (const guchar *) data, -1);
  g_hmac_get_digest (h, out, &len);
  g_hmac_unref (h);
  return g_bytes_new (out, len);
}

/* The client-final for the last challenge: right (variant 0) or wrong in
 * one way (password, nonce, channel binding, proof length, attribute). */
static GString *
scram_final_message (Client *c, guint variant)
{
  g_autofree char *sfirst = last_challenge (c);
  if (sfirst == NULL || c->first_bare == NULL)
    return g_string_new ("c=biws,r=fuzzclientnonce0,p=AAAA");
  g_auto(GStrv) f = g_strsplit (sfirst, ",", -1);
  if (g_strv_length (f) < 3 || !g_str_has_prefix (f[0], "r=") || !g_str_has_prefix (f[1], "s=")
      || !g_str_has_prefix (f[2], "i="))
    return g_string_new ("c=biws,r=x,p=AAAA");
  gsize salt_len;
  g_autofree guchar *salt_raw = g_base64_decode (f[1] + 2, &salt_len);
  g_autoptr(GBytes) salt = g_bytes_new (salt_raw, salt_len);
  guint iters = (guint) CLAMP (g_ascii_strtoull (f[2] + 2, NULL, 10), 1, 100000);
  guint what = variant % 7;
  g_autofree char *cb = g_base64_encode ((const guchar *) (what == 3 ? "y,," : c->gs2_header),
                                         strlen (what == 3 ? "y,," : c->gs2_header));
  g_autofree char *without = g_strdup_printf ("c=%s,r=%s%s%s", cb, f[0] + 2,
                                              what == 2 ? "x" : "",
                                              what == 5 ? ",e=ext" : "");
  g_autofree char *auth_message = g_strdup_printf ("%s,%s,%s", c->first_bare, sfirst, without);
  g_autoptr(GBytes) salted = myna_scram_salted_password (c->hash, what == 1 ? "wrong" : PASSWORD,
                                                         salt, iters);
  g_autoptr(GBytes) client_key = hmac_bytes (c->hash, salted, "Client Key");
  g_autoptr(GBytes) stored = NULL, server_key = NULL;
  myna_scram_keys (c->hash, salted, &stored, &server_key);
  g_autoptr(GBytes) sig = hmac_bytes (c->hash, stored, auth_message);
  gsize n = g_bytes_get_size (client_key);
  guint8 proof[32];
  for (gsize i = 0; i < n; i++)
    proof[i] = ((const guint8 *) g_bytes_get_data (client_key, NULL))[i]
               ^ ((const guint8 *) g_bytes_get_data (sig, NULL))[i];
  g_autofree char *proof64 = g_base64_encode (proof, what == 4 ? n - 1 : n);
  GString *m = g_string_new (without);
  g_string_append_printf (m, ",p=%s", what == 6 ? "" : proof64);
  return m;
}

/* <auth/> or <response/> with data chosen by the input:
 *   0 absent (self-closing)   1 empty text   2 "="   3 white space
 *   4 base64 of a payload     5 a payload as text   6 PLAIN message
 *   7 SCRAM client-first      8 SCRAM client-final  9 "n,,n=alice,r=" + payload */
static void
sasl_element (Client *c, Input *in, const char *name, const char *mech)
{
  g_autoptr(GString) x = g_string_new (NULL);
  g_autoptr(GString) msg = NULL;
  guint mode = take (in) % 10;
  const char *text = NULL;
  gsize len;
  const char *payload;

  g_string_append_printf (x, "<%s xmlns='" NS_SASL "'", name);
  if (mech != NULL)
    {
      g_string_append (x, " mechanism='");
      myna_xml_escape_append (x, mech, -1);
      g_string_append_c (x, '\'');
    }
  switch (mode)
    {
    case 0:
      g_string_append (x, "/>");
      client_write (c, x->str, x->len);
      return;
    case 1:
      break;
    case 2:
      g_string_append_c (x, '>');
      text = "=";
      break;
    case 3:
      g_string_append_c (x, '>');
      text = " \n\t";
      break;
    case 4:
      payload = take_payload (in, &len);
      msg = g_string_new_len (payload, (gssize) len);
      break;
    case 5:
      payload = take_payload (in, &len);
      g_string_append_c (x, '>');
      myna_xml_escape_append (x, payload, (gssize) len);
      break;
    case 6:
      msg = sasl_plain_message (take (in));
      break;
    case 7:
      msg = scram_first_message (c, take (in));
      break;
    case 8:
      msg = scram_final_message (c, take (in));
      break;
    default:
      payload = take_payload (in, &len);
      msg = g_string_new ("n,,n=" USER ",r=");
      g_string_append_len (msg, payload, (gssize) len);
      break;
    }
  if (x->str[x->len - 1] != '>')
    g_string_append_c (x, '>');
  if (text != NULL)
    g_string_append (x, text);
  if (msg != NULL && msg->len > 0)
    {
      g_autofree char *b64 = g_base64_encode ((const guchar *) msg->str, msg->len);
      g_string_append (x, b64);
    }
  else if (msg != NULL)
    g_string_append_c (x, '=');
  g_string_append_printf (x, "</%s>", name);
  client_write (c, x->str, x->len);
}

static void
send_auth (Client *c, Input *in)
{
  const char *mech = mechanisms[take (in) % G_N_ELEMENTS (mechanisms)];

  c->hash = mech != NULL && g_str_has_prefix (mech, "SCRAM-SHA-1") ? MYNA_SCRAM_SHA1
                                                                    : MYNA_SCRAM_SHA256;
  sasl_element (c, in, "auth", mech);
}

/* IQs a client may try before (or after) authentication. */
static void
send_iq (Client *c, Input *in)
{
  guint kind = take (in) % 12;
  gsize len;
  const char *payload = take_payload (in, &len);
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GString) x = g_string_new (NULL);

  myna_xml_escape_append (text, payload, (gssize) len);
  switch (kind)
    {
    case 0:
      g_string_printf (x, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                          "<resource>%s</resource></bind></iq>", text->str);
      break;
    case 1:
      g_string_printf (x, "<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
      break;
    case 2:
      g_string_printf (x, "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
      break;
    case 3:
      g_string_printf (x, "<iq type='get' id='p1' to='" HOST "'><ping xmlns='urn:xmpp:ping'/></iq>");
      break;
    case 4:
      g_string_printf (x, "<iq type='get' id='d1' to='" HOST "'>"
                          "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
      break;
    case 5:
      g_string_printf (x, "<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>");
      break;
    case 6:
      g_string_printf (x, "<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>");
      break;
    case 7:
      c->registered = TRUE;
      g_string_printf (x, "<iq type='set' id='r2'><query xmlns='jabber:iq:register'>"
                          "<username>fz%s</username><password>password%s</password></query></iq>",
                          text->str, text->str);
      break;
    case 8:
      c->registered = TRUE;
      g_string_printf (x, "<iq type='set' id='r3'><query xmlns='jabber:iq:register'>"
                          "<username>%s</username></query></iq>", text->str);
      break;
    case 9:
      g_string_printf (x, "<iq type='set' id='r4'><query xmlns='jabber:iq:register'>"
                          "<remove/></query></iq>");
      break;
    case 10:
      g_string_printf (x, "<iq type='result' id='%s'/>", text->str);
      break;
    default:
      g_string_printf (x, "<iq type='get' id='u1' to='%s'><query xmlns='%s'/></iq>",
                       text->str, text->str);
      break;
    }
  client_write (c, x->str, x->len);
}

static void
send_other (Client *c, Input *in)
{
  static const char *const others[] = {
    "<abort xmlns='" NS_SASL "'/>",
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    "</stream:stream>",
    "<message to='bob@" HOST "' type='chat'><body>hi</body></message>",
    "<presence/>",
    "<success xmlns='" NS_SASL "'/>",
    "<challenge xmlns='" NS_SASL "'>=</challenge>",
    "<failure xmlns='" NS_SASL "'><aborted/></failure>",
    "<enable xmlns='urn:xmpp:sm:3'/>",
    "<auth xmlns='jabber:iq:auth'/>",
    "<stream:features/>",
    " ",
  };

  client_send (c, others[take (in) % G_N_ELEMENTS (others)]);
}

/* One step of the input; FALSE at the end. */
static gboolean
step (Client *c, Input *in)
{
  gsize len;
  const char *payload;

  if (in->left == 0)
    return FALSE;
  switch (take (in) % 6)
    {
    case 0:
      client_send (c, headers[take (in) % G_N_ELEMENTS (headers)]);
      break;
    case 1:
      send_auth (c, in);
      break;
    case 2:
      sasl_element (c, in, "response", NULL);
      break;
    case 3:
      send_iq (c, in);
      break;
    case 4:
      send_other (c, in);
      break;
    default:
      payload = take_payload (in, &len);
      client_write (c, payload, len);
      break;
    }
  pump (c);
  return TRUE;
}

/* ---- the server ------------------------------------------------------------ */

static void
done_flag (const GError *error, gpointer data)
{
  if (error != NULL)
    g_error ("fuzz-preauth: account setup: %s", error->message);
  *(gboolean *) data = TRUE;
}

static void
server_init (void)
{
  g_log_set_writer_func (fuzz_quiet_writer, NULL, NULL);
  g_autofree char *conf = g_strdup_printf (
      "[global]\n"
      "data_dir = %s\n"
      "module_path = %s\n"
      "modules = auth;bind;register;disco;ping;version\n"
      "c2s_require_encryption = false\n"
      "admin_socket =\n"
      "log_level = warning\n"
      "[listener:c2s]\n"
      "address = 127.0.0.1\n"
      "port = 0\n"
      "[host:" HOST "]\n"
      "[module:auth]\n"
      "allow_plain_insecure = true\n"
      "max_failures = 1000\n"
      "[module:register]\n"
      "allow_registration = true\n"
      "allow_insecure = true\n"
      "min_seconds_between = 0\n",
      fuzz_make_data_dir ("preauth"), MYNA_BUILD_MODULEDIR);
  server = fuzz_server_start (conf);
  /* Held open for good: the per-input reload of auth then maps the same
   * code again instead of unmapping and remapping it (slow, and each new
   * mapping would register new coverage counters with libFuzzer). */
  MynaManifest *auth = myna_module_registry_find (server->modules, "auth");
  if (auth == NULL || g_module_open (auth->so_path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY) == NULL)
    g_error ("fuzz-preauth: the auth module: %s", g_module_error ());
  listener = server->listeners->pdata[0];
  host = myna_server_get_host (server, HOST);
  /* Few iterations: PLAIN checks and registrations stay fast, and the
   * harness computes SCRAM proofs for every challenge. */
  myna_accounts_set_iterations (16);
  gboolean created = FALSE;
  myna_account_create (server->storage, HOST, USER, PASSWORD, done_flag, &created, NULL);
  while (!created)
    g_main_context_iteration (NULL, TRUE);
  pump (NULL);
}

/* Deletes the accounts registration made. */
static void
drop_registered (void)
{
  g_auto(GStrv) users = myna_account_list (server->storage, HOST, NULL);

  for (guint i = 0; users != NULL && users[i] != NULL; i++)
    if (strcmp (users[i], USER) != 0)
      myna_account_delete (server->storage, HOST, users[i], NULL, NULL, NULL);
  pump (NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  Input in = { data, size };
  int fds[2];

  if (server == NULL)
    server_init ();
  /* A fresh auth module: no failure counts from earlier inputs.  Unload
   * and load, not a reload: a reload maps a private copy of the .so (new
   * coverage counters for libFuzzer, unmapped again after), while a load
   * maps the file held open above again. */
  if (!myna_module_unload (server->modules, host, "auth", &error)
      || myna_module_load (server->modules, host, "auth", &error) == NULL)
    g_error ("fuzz-preauth: reloading auth: %s", error->message);
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    g_error ("fuzz-preauth: socketpair: %s", g_strerror (errno));

  Client c = { .fd = fds[0], .in = g_string_new (NULL), .hash = MYNA_SCRAM_SHA256 };
  MynaSession *s = myna_connection_new (server, listener, fds[1], "fuzz", "192.0.2.1");
  if (s == NULL)
    abort ();
  /* Odd first byte: the input starts with the usual stream header. */
  if (take (&in) & 1)
    client_send (&c, headers[0]);
  pump (&c);
  for (guint i = 0; i < MAX_STEPS && step (&c, &in); i++)
    ;
  /* The client leaves; the server must let the connection go. */
  shutdown (c.fd, SHUT_WR);
  pump (&c);
  close (c.fd);
  pump (NULL);
  if (g_hash_table_size (server->connections) != 0)
    {
      fprintf (stderr, "fuzz-preauth: the connection outlived its client\n");
      abort ();
    }
  if (g_getenv ("FUZZ_PREAUTH_TRACE") != NULL)
    fprintf (stderr, "---- server sent:\n%s\n", c.in->str);
  if (c.registered)
    drop_registered ();
  g_string_free (c.in, TRUE);
  g_free (c.gs2_header);
  g_free (c.first_bare);
  return 0;
}
