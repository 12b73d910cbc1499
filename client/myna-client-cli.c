/* myna-client-cli.c: the myna-client command — libmyna-client from a shell
 * or a script.  It uses the public API only (<myna/client/myna-client.h>)
 * and prints one JSON object per line on stdout (json-glib), flushed
 * after each line; diagnostics go to stderr.
 *
 *   myna-client -a FILE [-t SECONDS] [-v] register | roster | send JID TEXT | listen | chat
 *
 * Exit codes: 0 done, 1 failed (timeout, registration refused, message
 * refused), 2 usage (options, account file, store), 3 not-authorized. */
#include <myna/client/myna-client.h>

#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define EXIT_OK          0
#define EXIT_FAILED      1
#define EXIT_USAGE       2
#define EXIT_NOT_AUTH    3

/* How long a logout may take before the command exits anyway (the
 * library waits at most a few seconds for acknowledgements). */
#define LOGOUT_LIMIT_S   6

static const char cli_description[] =
  "Commands:\n"
  "  register        Register the account (in-band, XEP-0077) unless the store\n"
  "                  holds one; prints {\"type\":\"registered\",\"jid\":...} and exits 0.\n"
  "                  With jid = a domain only, a username and password are\n"
  "                  generated (kept in the store).  Exits 1 when the server\n"
  "                  refuses the registration (given credentials it refuses\n"
  "                  to register are tried to log in: exit 0 when they work).\n"
  "  roster          Logs in, prints the roster (one {\"type\":\"roster\",\"jid\":...,\n"
  "                  \"name\":...,\"subscription\":...,\"groups\":[...]} per item), logs out.\n"
  "  send JID TEXT   Sends one chat message; exits 0 once the server acknowledged\n"
  "                  it (prints {\"type\":\"acked\",\"id\":...}).  A message not sent\n"
  "                  before the timeout stays queued in the store and goes with\n"
  "                  the next run.\n"
  "  listen          Stays online (reconnecting as needed) and prints every\n"
  "                  received message and notification, once each, and every\n"
  "                  state change, until SIGINT/SIGTERM or the end of standard\n"
  "                  input (lines read there are ignored; a stdin that is\n"
  "                  /dev/null is not read).\n"
  "  chat            Like listen, and reads JSON lines {\"to\":...,\"body\":...} from\n"
  "                  stdin, sending each exactly once (prints {\"type\":\"queued\",\n"
  "                  \"id\":...,\"to\":...}, then {\"type\":\"acked\"|\"receipt\",\"id\":...}).\n"
  "                  A bad line prints {\"type\":\"error\",\"reason\":...}.  At end of\n"
  "                  input it waits until every message is acknowledged, then\n"
  "                  logs out and exits 0.\n"
  "\n"
  "Output (stdout), one JSON object per line:\n"
  "  {\"type\":\"message\",\"from\":...,\"id\":...,\"body\":...,\"stanza_id\"?:...,\"timestamp\":...}\n"
  "  {\"type\":\"notification\",\"id\":...,\"title\":...,\"message\":...,\"uri\":...}\n"
  "  {\"type\":\"state\",\"state\":\"connecting|connected|authenticated|disconnected|\n"
  "   reconnecting|stopped\",\"reason\"?:...,\"delay\"?:SECONDS,\"delay_ms\"?:MS}\n"
  "  {\"type\":\"acked\"|\"receipt\"|\"failed\",\"id\":...}\n"
  "  timestamp: ISO 8601 UTC (the sender's delay stamp when it came late).\n"
  "\n"
  "The account file (-a) is a key file; the keys are read from the group\n"
  "[account], or else the file's first group:\n"
  "  jid                 the account (a bare JID), or a domain to register a\n"
  "                      generated account on\n"
  "  password            its password (none: generated when registering)\n"
  "  server, port        where to connect (default: the JID's domain, 5222,\n"
  "                      or 5223 with tls = direct)\n"
  "  tls                 starttls (default) | direct | none (loopback tests only)\n"
  "  ca_file             PEM trust anchors (default: the system's)\n"
  "  accept_certificate  a PEM certificate accepted as is (self-signed, development)\n"
  "  store               the SQLite store (default: $XDG_DATA_HOME/myna-client/\n"
  "                      <jid>.db); it keeps the account, roster and messages\n"
  "  resource            the resource to bind (default: the server's choice)\n"
  "  heartbeat           seconds between heartbeats on a quiet link (default 60,\n"
  "                      0 none); heartbeat_timeout: seconds to wait for the answer\n"
  "  register            true (default) | false: register the account when the\n"
  "                      store has none, and again after not-authorized\n"
  "  reconnect_base, reconnect_max   the reconnection waits in milliseconds\n"
  "\n"
  "Signals: SIGINT and SIGTERM log out and exit 0.\n"
  "Exit status: 0 done; 1 failed (timeout, registration or message refused);\n"
  "2 usage error (options, account file, store); 3 credentials refused\n"
  "(not-authorized).  Reasons go to stderr as \"myna-client: ...\".";

typedef enum {
  CMD_REGISTER,
  CMD_ROSTER,
  CMD_SEND,
  CMD_LISTEN,
  CMD_CHAT,
} Command;

/* The command's run: the client, what it waits for, how it ends. */
typedef struct {
  Command           command;
  GMainLoop        *loop;
  MynaClientStore  *store;
  MynaClient       *client;
  int               exit_code;
  gboolean          finishing;       /* logging out, then quitting */
  char             *last_reason;     /* the last DISCONNECTED reason */
  guint             timeout_s;
  /* send */
  char             *send_id;
  /* roster */
  gboolean          roster_printed;
  /* chat: ids sent and not yet acknowledged; stdin */
  GHashTable       *chat_pending;
  gboolean          stdin_eof;
  GDataInputStream *stdin_data;
  GCancellable     *cancellable;
} App;

/* ---- output -------------------------------------------------------------------- */

/* Prints @builder's object as one line on stdout, flushed. */
static void
print_json (JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  fputs (text, stdout);
  fputc ('\n', stdout);
  fflush (stdout);
}

/* Adds "key": value unless @value is NULL. */
static void
add_string (JsonBuilder *b, const char *key, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, value);
}

/* Starts an object with "type": @type. */
static JsonBuilder *
json_begin (const char *type)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  add_string (b, "type", type);
  return b;
}

/* Ends the object and prints it. */
static void
json_end (JsonBuilder *b)
{
  json_builder_end_object (b);
  print_json (b);
  g_object_unref (b);
}

/* {"type": @type, "id": @id} */
static void
print_id (const char *type, const char *id)
{
  JsonBuilder *b = json_begin (type);

  add_string (b, "id", id);
  json_end (b);
}

static void
print_error_line (const char *reason)
{
  JsonBuilder *b = json_begin ("error");

  add_string (b, "reason", reason);
  json_end (b);
}

/* A reason for the user, on stderr. */
G_GNUC_PRINTF (1, 2) static void
say (const char *format, ...)
{
  va_list ap;
  g_autofree char *text = NULL;

  va_start (ap, format);
  text = g_strdup_vprintf (format, ap);
  va_end (ap);
  fprintf (stderr, "myna-client: %s\n", text);
}

/* ---- ending -------------------------------------------------------------------- */

static gboolean
logout_limit_cb (gpointer data)
{
  App *app = data;

  g_debug ("the logout took too long; exiting");
  g_main_loop_quit (app->loop);
  return G_SOURCE_REMOVE;
}

/* Ends the command with @code: logs out, then quits once the client is
 * STOPPED (or after LOGOUT_LIMIT_S). */
static void
app_finish (App *app, int code)
{
  if (app->finishing)
    return;
  app->finishing = TRUE;
  app->exit_code = code;
  g_cancellable_cancel (app->cancellable);
  if (app->command == CMD_SEND && code != EXIT_OK && app->send_id != NULL)
    {
      /* We say it failed: then it must not go out later either (from the
       * store's queue, on this account's next run) — a user who sends
       * it again would otherwise deliver it twice. */
      g_autoptr (MynaClientMessage) m =
          myna_client_store_get_message (app->store, MYNA_CLIENT_DIRECTION_OUT, app->send_id);
      g_autoptr (GError) error = NULL;
      if (m != NULL && (m->state == MYNA_CLIENT_MESSAGE_QUEUED
                        || m->state == MYNA_CLIENT_MESSAGE_SENT)
          && !myna_client_store_set_message_state (app->store, app->send_id,
                                                   MYNA_CLIENT_MESSAGE_FAILED, &error)
          && error != NULL)
        g_warning ("message %s: %s", app->send_id, error->message);
    }
  if (myna_client_get_state (app->client) == MYNA_CLIENT_STATE_STOPPED)
    {
      g_main_loop_quit (app->loop);
      return;
    }
  g_timeout_add_seconds (LOGOUT_LIMIT_S, logout_limit_cb, app);
  myna_client_logout (app->client);
  if (myna_client_get_state (app->client) == MYNA_CLIENT_STATE_STOPPED)
    g_main_loop_quit (app->loop);
}

static gboolean
signal_cb (gpointer data)
{
  App *app = data;

  g_debug ("signal: logging out");
  app_finish (app, EXIT_OK);
  return G_SOURCE_CONTINUE;
}

static gboolean
timeout_cb (gpointer data)
{
  App *app = data;

  if (app->last_reason != NULL)
    say ("timeout after %u s (last: %s)", app->timeout_s, app->last_reason);
  else
    say ("timeout after %u s", app->timeout_s);
  app_finish (app, EXIT_FAILED);
  return G_SOURCE_REMOVE;
}

/* ---- the client's signals ------------------------------------------------------------ */

/* Prints the store's roster and ends the roster command. */
static void
roster_print (App *app)
{
  g_autoptr (GPtrArray) items = NULL;

  if (app->roster_printed || app->finishing)
    return;
  app->roster_printed = TRUE;
  items = myna_client_store_get_roster (app->store);
  for (guint i = 0; i < items->len; i++)
    {
      const MynaClientRosterItem *item = g_ptr_array_index (items, i);
      JsonBuilder *b = json_begin ("roster");

      add_string (b, "jid", item->jid);
      add_string (b, "name", item->name);
      add_string (b, "subscription", item->subscription);
      add_string (b, "ask", item->ask);
      json_builder_set_member_name (b, "groups");
      json_builder_begin_array (b);
      for (guint g = 0; item->groups != NULL && item->groups[g] != NULL; g++)
        json_builder_add_string_value (b, item->groups[g]);
      json_builder_end_array (b);
      json_end (b);
    }
  app_finish (app, EXIT_OK);
}

/* Our own roster get has its answer: the library's roster get, sent before
 * it on the same stream, was answered before it (servers answer one
 * stream's IQs in order), so the store is up to date. */
static void
roster_iq_cb (GObject *source, GAsyncResult *result, gpointer data)
{
  App *app = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *xml = myna_client_send_iq_finish (MYNA_CLIENT (source), result, &error);

  if (xml == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (xml == NULL)
    g_debug ("roster get: %s", error->message);
  roster_print (app);
}

/* After the library's after-login work (its roster get) ran. */
static gboolean
roster_after_login_cb (gpointer data)
{
  App *app = data;

  if (!app->roster_printed && !app->finishing
      && myna_client_get_state (app->client) == MYNA_CLIENT_STATE_AUTHENTICATED)
    myna_client_send_iq (app->client,
                         "<iq type='get'><query xmlns='jabber:iq:roster'/></iq>",
                         0, app->cancellable, roster_iq_cb, app);
  return G_SOURCE_REMOVE;
}

/* Ends listen at the end of stdin, and chat there once every message it
 * sent is acknowledged too. */
static void
chat_check_done (App *app)
{
  if (app->command == CMD_LISTEN && app->stdin_eof)
    app_finish (app, EXIT_OK);
  if (app->command == CMD_CHAT && app->stdin_eof
      && g_hash_table_size (app->chat_pending) == 0)
    app_finish (app, EXIT_OK);
}

static void
on_state_changed (MynaClient *client, guint state, const char *reason, gpointer data)
{
  App *app = data;

  /* RECONNECTING is printed with its delay by on_reconnecting. */
  if (state != MYNA_CLIENT_STATE_RECONNECTING)
    {
      JsonBuilder *b = json_begin ("state");
      add_string (b, "state", myna_client_state_to_string (state));
      add_string (b, "reason", reason);
      json_end (b);
    }
  if (reason != NULL)
    {
      g_free (app->last_reason);
      app->last_reason = g_strdup (reason);
    }

  if (state == MYNA_CLIENT_STATE_STOPPED)
    {
      if (app->finishing)
        g_main_loop_quit (app->loop);
      else if (g_strcmp0 (reason, "not-authorized") == 0)
        {
          say ("the credentials were refused (not-authorized)");
          app_finish (app, EXIT_NOT_AUTH);
        }
      else
        {
          say ("stopped%s%s", reason != NULL ? ": " : "", reason != NULL ? reason : "");
          app_finish (app, EXIT_FAILED);
        }
      return;
    }
  if (app->finishing)
    return;
  if (state == MYNA_CLIENT_STATE_DISCONNECTED && reason != NULL)
    {
      if (g_str_has_prefix (reason, "registration:") && app->command == CMD_REGISTER)
        {
          say ("%s", reason);
          app_finish (app, EXIT_FAILED);
        }
      else if (strcmp (reason, "not-authorized") == 0 && app->command == CMD_REGISTER)
        {
          /* The registration of the given account failed (the chain then
           * tried them to log in): a registration failure. */
          say ("registration failed, and the given credentials were refused (not-authorized)");
          app_finish (app, EXIT_FAILED);
        }
      else if (strcmp (reason, "not-authorized") == 0
               && (app->command == CMD_SEND || app->command == CMD_ROSTER))
        {
          say ("the credentials were refused (not-authorized)");
          app_finish (app, EXIT_NOT_AUTH);
        }
      return;
    }
  if (state == MYNA_CLIENT_STATE_AUTHENTICATED)
    {
      if (app->command == CMD_ROSTER)
        g_idle_add (roster_after_login_cb, app);
      else if (app->command == CMD_REGISTER)
        {
          /* Logged in without registering: the given account existed
           * already (the server said conflict, or has no registration). */
          g_autofree char *jid = NULL;
          JsonBuilder *b;

          myna_client_store_get_account (app->store, &jid, NULL);
          b = json_begin ("registered");
          add_string (b, "jid", jid);
          json_builder_set_member_name (b, "existing");
          json_builder_add_boolean_value (b, TRUE);
          json_end (b);
          app_finish (app, EXIT_OK);
        }
    }
}

static void
on_reconnecting (MynaClient *client, guint delay_ms, gpointer data)
{
  JsonBuilder *b = json_begin ("state");

  add_string (b, "state", "reconnecting");
  /* whole seconds (rounded up) and the exact milliseconds: json-glib
   * writes doubles with 17 digits (0.477 as 0.47699999999999998) */
  json_builder_set_member_name (b, "delay");
  json_builder_add_int_value (b, (delay_ms + 999) / 1000);
  json_builder_set_member_name (b, "delay_ms");
  json_builder_add_int_value (b, delay_ms);
  json_end (b);
}

/* Microseconds since the epoch as ISO 8601 UTC. */
static char *
format_timestamp (gint64 usec)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (usec / G_USEC_PER_SEC);

  if (dt == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, usec);
  return g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ");
}

static void
on_message_received (MynaClient *client, MynaClientMessage *m, gpointer data)
{
  JsonBuilder *b = json_begin ("message");
  g_autofree char *ts = format_timestamp (m->timestamp);

  add_string (b, "from", m->peer);
  add_string (b, "id", m->id);
  add_string (b, "body", m->body);
  add_string (b, "stanza_id", m->stanza_id);
  add_string (b, "timestamp", ts);
  json_end (b);
}

static void
on_notification (MynaClient *client, MynaClientNotification *n, gpointer data)
{
  JsonBuilder *b = json_begin ("notification");

  add_string (b, "id", n->id);
  add_string (b, "title", n->title);
  add_string (b, "message", n->message);
  add_string (b, "uri", n->uri);
  json_end (b);
}

static void
on_message_state_changed (MynaClient *client, const char *id, guint state, gpointer data)
{
  App *app = data;
  const char *type = NULL;
  gboolean ours = (app->command == CMD_SEND && g_strcmp0 (id, app->send_id) == 0)
                  || (app->command == CMD_CHAT && g_hash_table_contains (app->chat_pending, id));

  switch (state)
    {
    case MYNA_CLIENT_MESSAGE_ACKED:     type = "acked"; break;
    case MYNA_CLIENT_MESSAGE_DELIVERED: type = "receipt"; break;
    case MYNA_CLIENT_MESSAGE_FAILED:    type = "failed"; break;
    default: break;
    }
  if (type == NULL || (app->command != CMD_CHAT && app->command != CMD_SEND))
    return;
  if (app->command == CMD_SEND && !ours)
    return;
  print_id (type, id);
  if (app->command == CMD_SEND)
    {
      if (state == MYNA_CLIENT_MESSAGE_FAILED)
        {
          say ("the server refused the message");
          app_finish (app, EXIT_FAILED);
        }
      else
        app_finish (app, EXIT_OK);
    }
  else if (ours)
    {
      g_hash_table_remove (app->chat_pending, id);
      chat_check_done (app);
    }
}

static void
on_registered (MynaClient *client, const char *jid, gpointer data)
{
  App *app = data;
  JsonBuilder *b = json_begin ("registered");

  add_string (b, "jid", jid);
  json_end (b);
  if (app->command == CMD_REGISTER)
    app_finish (app, EXIT_OK);
}

static void
on_credentials_cleared (MynaClient *client, const char *reason, gpointer data)
{
  App *app = data;

  g_debug ("credentials cleared: %s", reason);
  if (app->command == CMD_REGISTER)
    {
      say ("registration failed, and the given credentials were refused (%s)",
           reason != NULL ? reason : "not-authorized");
      app_finish (app, EXIT_FAILED);
    }
  else if (app->command == CMD_SEND || app->command == CMD_ROSTER)
    {
      say ("the credentials were refused (%s)", reason != NULL ? reason : "not-authorized");
      app_finish (app, EXIT_NOT_AUTH);
    }
}

static void
on_roster_changed (MynaClient *client, gpointer data)
{
  App *app = data;

  if (app->command == CMD_ROSTER)
    roster_print (app);
}

/* ---- chat: stdin ---------------------------------------------------------------------- */

static void chat_read_next (App *app);

/* One line of stdin: {"to": …, "body": …}. */
/* The string member @key of @obj, or NULL when absent or not a string. */
static const char *
member_string (JsonObject *obj, const char *key)
{
  JsonNode *node = json_object_get_member (obj, key);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static void
chat_line (App *app, char *line)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  JsonNode *root;
  JsonObject *obj;
  const char *to;
  const char *body;

  if (*g_strstrip (line) == '\0')
    return;
  if (!json_parser_load_from_data (parser, line, -1, &error))
    {
      g_autofree char *why = g_strdup_printf ("malformed JSON: %s", error->message);
      print_error_line (why);
      return;
    }
  root = json_parser_get_root (parser);
  obj = root != NULL && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (obj == NULL)
    {
      print_error_line ("not a JSON object");
      return;
    }
  to = member_string (obj, "to");
  body = member_string (obj, "body");
  if (to == NULL || body == NULL)
    {
      print_error_line ("a line needs \"to\" and \"body\" (strings)");
      return;
    }
  id = myna_client_send_message (app->client, to, body, &error);
  if (id == NULL)
    {
      print_error_line (error->message);
      return;
    }
  g_hash_table_add (app->chat_pending, g_strdup (id));
  {
    JsonBuilder *b = json_begin ("queued");
    add_string (b, "id", id);
    add_string (b, "to", to);
    json_end (b);
  }
}

static void
chat_read_cb (GObject *source, GAsyncResult *result, gpointer data)
{
  App *app = data;
  g_autoptr (GError) error = NULL;
  gsize length = 0;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source),
                                                                      result, &length, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA))
    {
      say ("reading stdin: %s", error->message);
      line = NULL;
    }
  else if (error != NULL)
    {
      /* Not UTF-8: that line is dropped, the next one read. */
      print_error_line ("the line is not UTF-8");
      chat_read_next (app);
      return;
    }
  if (line == NULL)
    {
      g_debug ("end of input; %u message(s) to see acknowledged",
               g_hash_table_size (app->chat_pending));
      app->stdin_eof = TRUE;
      chat_check_done (app);
      return;
    }
  if (app->command == CMD_CHAT)
    chat_line (app, line);
  chat_read_next (app);
}

static void
chat_read_next (App *app)
{
  if (app->finishing)
    return;
  g_data_input_stream_read_line_async (app->stdin_data, G_PRIORITY_DEFAULT, app->cancellable,
                                       chat_read_cb, app);
}

/* ---- setup --------------------------------------------------------------------------- */

/* Drops the library's chatter unless -v: warnings and worse only. */
static GLogWriterOutput
quiet_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  if ((level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG)) != 0)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, data);
}

/* Reads a key of the account group as a string, or NULL.  A trailing
 * " # comment" is dropped (GKeyFile has only whole-line comments), except
 * from the password, which may hold one. */
static char *
key_string (GKeyFile *kf, const char *group, const char *key)
{
  g_autofree char *value = g_key_file_get_string (kf, group, key, NULL);

  if (value != NULL && strcmp (key, "password") != 0)
    {
      for (char *p = value; *p != '\0'; p++)
        if ((*p == ' ' || *p == '\t') && p[strspn (p, " \t")] == '#')
          {
            *p = '\0';
            break;
          }
    }
  if (value != NULL)
    g_strstrip (value);
  return value != NULL && *value != '\0' ? g_steal_pointer (&value) : NULL;
}

/* Reads an unsigned key bounded by @max into *@out (unchanged when
 * absent); FALSE with a message for a bad value. */
static gboolean
key_uint (GKeyFile *kf, const char *file, const char *group, const char *key, guint64 max,
          guint *out)
{
  g_autofree char *value = key_string (kf, group, key);
  guint64 n;

  if (value == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (value, 10, 0, max, &n, NULL))
    {
      say ("%s: %s = \"%s\": not a number from 0 to %" G_GUINT64_FORMAT, file, key, value, max);
      return FALSE;
    }
  *out = (guint) n;
  return TRUE;
}

/* Reads the account file, makes the store and the client. */
static gboolean
app_setup (App *app, const char *file)
{
  static const char *const known[] = {
    "jid", "password", "server", "port", "tls", "ca_file", "accept_certificate", "store",
    "resource", "heartbeat", "heartbeat_timeout", "register", "reconnect_base",
    "reconnect_max", NULL,
  };
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *group = NULL;
  g_autofree char *jid = NULL, *password = NULL, *server = NULL, *tls_name = NULL;
  g_autofree char *ca_file = NULL, *accept = NULL, *store_path = NULL, *resource = NULL;
  g_autofree char *reg = NULL;
  g_auto (GStrv) keys = NULL;
  guint port = 0, heartbeat = 60, heartbeat_timeout = 20, rbase = 2000, rmax = 600000;
  MynaClientTls tls = MYNA_CLIENT_TLS_STARTTLS;
  gboolean auto_register = TRUE;

  if (!g_key_file_load_from_file (kf, file, G_KEY_FILE_NONE, &error))
    {
      say ("%s: %s", file, error->message);
      return FALSE;
    }
  group = g_key_file_has_group (kf, "account") ? g_strdup ("account")
                                               : g_key_file_get_start_group (kf);
  if (group == NULL)
    {
      say ("%s: no [account] group", file);
      return FALSE;
    }
  keys = g_key_file_get_keys (kf, group, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    if (!g_strv_contains (known, keys[i]))
      say ("%s: unknown key \"%s\" ignored", file, keys[i]);

  jid = key_string (kf, group, "jid");
  password = key_string (kf, group, "password");
  server = key_string (kf, group, "server");
  tls_name = key_string (kf, group, "tls");
  ca_file = key_string (kf, group, "ca_file");
  accept = key_string (kf, group, "accept_certificate");
  store_path = key_string (kf, group, "store");
  resource = key_string (kf, group, "resource");
  reg = key_string (kf, group, "register");
  if (!key_uint (kf, file, group, "port", 65535, &port)
      || !key_uint (kf, file, group, "heartbeat", 86400, &heartbeat)
      || !key_uint (kf, file, group, "heartbeat_timeout", 86400, &heartbeat_timeout)
      || !key_uint (kf, file, group, "reconnect_base", G_MAXUINT, &rbase)
      || !key_uint (kf, file, group, "reconnect_max", G_MAXUINT, &rmax))
    return FALSE;
  if (tls_name == NULL || g_ascii_strcasecmp (tls_name, "starttls") == 0)
    tls = MYNA_CLIENT_TLS_STARTTLS;
  else if (g_ascii_strcasecmp (tls_name, "direct") == 0)
    tls = MYNA_CLIENT_TLS_DIRECT;
  else if (g_ascii_strcasecmp (tls_name, "none") == 0)
    tls = MYNA_CLIENT_TLS_NONE;
  else
    {
      say ("%s: tls = \"%s\": starttls, direct or none", file, tls_name);
      return FALSE;
    }
  if (reg != NULL)
    {
      if (g_ascii_strcasecmp (reg, "true") == 0 || strcmp (reg, "1") == 0
          || g_ascii_strcasecmp (reg, "yes") == 0)
        auto_register = TRUE;
      else if (g_ascii_strcasecmp (reg, "false") == 0 || strcmp (reg, "0") == 0
               || g_ascii_strcasecmp (reg, "no") == 0)
        auto_register = FALSE;
      else
        {
          say ("%s: register = \"%s\": true or false", file, reg);
          return FALSE;
        }
    }
  if (app->command == CMD_REGISTER)
    auto_register = TRUE;
  if (jid == NULL && server == NULL)
    {
      say ("%s: no jid (nor server)", file);
      return FALSE;
    }
  if (store_path == NULL)
    {
      g_autofree char *name = g_strconcat (jid != NULL ? jid : server, ".db", NULL);
      g_strdelimit (name, "/\\", '_');
      store_path = g_build_filename (g_get_user_data_dir (), "myna-client", name, NULL);
    }
  app->store = myna_client_store_new (store_path, &error);
  if (app->store == NULL)
    {
      say ("%s", error->message);
      return FALSE;
    }
  app->client = myna_client_new (app->store);
  g_object_set (app->client,
                "jid", jid, "password", password, "server", server, "port", port,
                "tls", (guint) tls, "ca-file", ca_file, "accept-certificate", accept,
                "resource", resource, "heartbeat-interval", heartbeat,
                "heartbeat-timeout", heartbeat_timeout, "auto-register", auto_register,
                "reconnect-base", rbase, "reconnect-max", rmax, NULL);

  g_signal_connect (app->client, "state-changed", G_CALLBACK (on_state_changed), app);
  g_signal_connect (app->client, "reconnecting", G_CALLBACK (on_reconnecting), app);
  g_signal_connect (app->client, "message-received", G_CALLBACK (on_message_received), app);
  g_signal_connect (app->client, "notification", G_CALLBACK (on_notification), app);
  g_signal_connect (app->client, "message-state-changed",
                    G_CALLBACK (on_message_state_changed), app);
  g_signal_connect (app->client, "registered", G_CALLBACK (on_registered), app);
  g_signal_connect (app->client, "credentials-cleared", G_CALLBACK (on_credentials_cleared), app);
  g_signal_connect (app->client, "roster-changed", G_CALLBACK (on_roster_changed), app);
  return TRUE;
}

/* Whether stdin is worth reading for its end: not /dev/null (where a
 * background job's stdin often points). */
static gboolean
stdin_is_readable (void)
{
  struct stat in, null;

  if (fstat (0, &in) < 0)
    return FALSE;
  if (stat ("/dev/null", &null) == 0 && S_ISCHR (in.st_mode) && in.st_rdev == null.st_rdev)
    return FALSE;
  return TRUE;
}

/* Parses the command words; FALSE with a message when they are wrong. */
static gboolean
parse_command (App *app, int argc, char **argv, const char **to, const char **text)
{
  static const struct { const char *name; Command command; int args; } commands[] = {
    { "register", CMD_REGISTER, 0 },
    { "roster",   CMD_ROSTER,   0 },
    { "send",     CMD_SEND,     2 },
    { "listen",   CMD_LISTEN,   0 },
    { "chat",     CMD_CHAT,     0 },
  };

  if (argc < 2)
    {
      say ("no command (register, roster, send, listen, chat); see --help");
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        if (argc - 2 != commands[i].args)
          {
            say ("%s takes %s", argv[1], commands[i].args == 0 ? "no arguments" : "JID TEXT");
            return FALSE;
          }
        app->command = commands[i].command;
        if (app->command == CMD_SEND)
          {
            *to = argv[2];
            *text = argv[3];
          }
        return TRUE;
      }
  say ("unknown command \"%s\"; see --help", argv[1]);
  return FALSE;
}

int
main (int argc, char **argv)
{
  g_autofree char *account_file = NULL;
  gint timeout_s = 30;
  gboolean verbose = FALSE;
  GOptionEntry entries[] = {
    { "account", 'a', 0, G_OPTION_ARG_FILENAME, &account_file,
      "The account file (required)", "FILE" },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout_s,
      "Overall limit of register, roster and send (default 30)", "SECONDS" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Debug logs to stderr", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("COMMAND [JID TEXT] - an XMPP client");
  g_autoptr (GError) error = NULL;
  App app = { 0 };
  const char *to = NULL;
  const char *text = NULL;
  int code;

  g_log_writer_default_set_use_stderr (TRUE);
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context, cli_description);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      say ("%s", error->message);
      return EXIT_USAGE;
    }
  if (verbose)
    g_log_set_debug_enabled (TRUE);
  else
    g_log_set_writer_func (quiet_writer, NULL, NULL);
  if (account_file == NULL)
    {
      say ("-a FILE (the account file) is required; see --help");
      return EXIT_USAGE;
    }
  if (timeout_s <= 0)
    {
      say ("--timeout must be positive");
      return EXIT_USAGE;
    }
  if (!parse_command (&app, argc, argv, &to, &text))
    return EXIT_USAGE;
  app.timeout_s = (guint) timeout_s;
  app.loop = g_main_loop_new (NULL, FALSE);
  app.cancellable = g_cancellable_new ();
  app.chat_pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!app_setup (&app, account_file))
    {
      code = EXIT_USAGE;
      goto out;
    }

  if (app.command == CMD_REGISTER)
    {
      g_autofree char *jid = NULL;
      if (myna_client_store_get_account (app.store, &jid, NULL))
        {
          JsonBuilder *b = json_begin ("registered");
          add_string (b, "jid", jid);
          json_builder_set_member_name (b, "existing");
          json_builder_add_boolean_value (b, TRUE);
          json_end (b);
          code = EXIT_OK;
          goto out;
        }
    }
  if (app.command == CMD_SEND)
    {
      app.send_id = myna_client_send_message (app.client, to, text, &error);
      if (app.send_id == NULL)
        {
          say ("%s", error->message);
          code = EXIT_USAGE;
          goto out;
        }
    }
  if (app.command == CMD_CHAT || (app.command == CMD_LISTEN && stdin_is_readable ()))
    {
      g_autoptr (GInputStream) in = g_unix_input_stream_new (0, FALSE);
      app.stdin_data = g_data_input_stream_new (in);
      chat_read_next (&app);
    }
  if (app.command == CMD_REGISTER || app.command == CMD_ROSTER || app.command == CMD_SEND)
    g_timeout_add_seconds (app.timeout_s, timeout_cb, &app);
  g_unix_signal_add (SIGINT, signal_cb, &app);
  g_unix_signal_add (SIGTERM, signal_cb, &app);

  myna_client_start (app.client);
  if (!app.finishing)
    g_main_loop_run (app.loop);
  code = app.exit_code;

out:
  g_clear_object (&app.stdin_data);
  g_clear_object (&app.client);
  g_clear_object (&app.store);
  g_clear_object (&app.cancellable);
  g_clear_pointer (&app.chat_pending, g_hash_table_unref);
  g_clear_pointer (&app.loop, g_main_loop_unref);
  g_free (app.send_id);
  g_free (app.last_reason);
  return code;
}
