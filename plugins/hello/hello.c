/* hello: an example third-party Myna module, built only through the
 * installed SDK (pkg-config 'myna').
 *
 *  - answers <iq type='get'><hello xmlns='urn:example:hello'/></iq> sent to
 *    the server with <hello><greeting>TEXT</greeting><count>N</count></hello>;
 *  - answers a <message/> to the server whose body is "hello" with a chat
 *    message carrying TEXT;
 *  - TEXT is the `greeting` key of [module:hello] (or hello.greeting in a
 *    [host:DOMAIN] section); N counts the greetings given on this host and
 *    survives `mynactl reload hello` through save/restore. */
#include <gio/gio.h>        /* G_IO_ERROR */
#include <myna/module.h>

#define NS_HELLO "urn:example:hello"

/* The typed configuration: the core parses [module:hello] (and
 * hello.KEY in a [host:DOMAIN] section) into it at load and on every
 * accepted `mynactl reload-config`. */
typedef struct {
  char *greeting;
} HelloConfig;

/* Private state of one instance (one per virtual host). */
typedef struct {
  gint64 count;
} Hello;

/* Counts one more greeting and returns the text to greet with.
 * Returns: (transfer none) valid until the handler returns */
static const char *
hello_next_greeting (MynaModule *mod)
{
  Hello *hello = myna_module_get_data (mod);
  const HelloConfig *cfg = myna_module_get_config (mod);

  hello->count++;
  g_debug ("host %s: greeting #%" G_GINT64_FORMAT,
           myna_host_get_name (myna_module_get_host (mod)), hello->count);
  return cfg->greeting;
}

/* <iq type='get'><hello xmlns='urn:example:hello'/></iq> to the server. */
static MynaResult
hello_iq (MynaCall *call, MynaStanza *iq, gpointer user_data)
{
  MynaModule *mod = user_data;
  Hello *hello = myna_module_get_data (mod);

  /* Routes also catch IQs to bare JIDs of the host: those are not ours. */
  if (myna_jid_get_local (myna_call_get_to (call)) != NULL)
    return MYNA_PASS;

  const char *text = hello_next_greeting (mod);
  myna_call_reply (call, iq, "<hello xmlns='" NS_HELLO "'><greeting>%s</greeting>"
                   "<count>%" G_GINT64_FORMAT "</count></hello>", text, hello->count);
  return MYNA_HANDLED;
}

/* Whether @message is a plain "hello" worth answering. */
static gboolean
hello_is_greeting (MynaStanza *message)
{
  const char *body = myna_stanza_get_child_text (message, "body");

  /* Never answer an error: it could bounce forever. */
  if (body == NULL || g_strcmp0 (myna_stanza_get_type (message), "error") == 0)
    return FALSE;
  g_autofree char *trimmed = g_strstrip (g_strdup (body));
  return g_strcmp0 (trimmed, "hello") == 0;
}

/* Hook on "message/host": <message><body>hello</body></message> to the
 * server gets a chat message back; anything else passes on. */
static MynaResult
hello_message (MynaCall *call, MynaStanza *message, gpointer user_data)
{
  MynaModule *mod = user_data;
  MynaJid *sender = myna_call_get_from (call);

  if (sender == NULL || !hello_is_greeting (message))
    return MYNA_PASS;

  /* Arguments are escaped: a greeting with < or & stays text. */
  g_autoptr(MynaStanza) reply = myna_stanza_build (
      "<message type='chat' to='%s'><body>%s</body></message>",
      myna_jid_to_string (sender), hello_next_greeting (mod));
  if (reply != NULL)               /* NULL: a greeting XML cannot carry */
    myna_call_send (call, reply);  /* sets from to the server's domain */
  return MYNA_HANDLED;
}

static gboolean
hello_load (MynaModule *mod, GError **error)
{
  myna_module_set_data (mod, g_new0 (Hello, 1), g_free);
  if (!myna_module_route_iq (mod, MYNA_IQ_GET, NS_HELLO, "hello",
                             hello_iq, mod, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                   "{%s}hello is already served by another module", NS_HELLO);
      return FALSE;
    }
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_HOST, 0, hello_message, mod, NULL);
  return TRUE;
}

/* Nothing to free by hand: the core drops our routes and hooks, and the
 * Hello struct goes with the data's destroy notify. */
static void
hello_unload (MynaModule *mod)
{
  Hello *hello = myna_module_get_data (mod);

  g_debug ("host %s: unloading after %" G_GINT64_FORMAT " greeting(s)",
           myna_host_get_name (myna_module_get_host (mod)), hello->count);
}

/* State carried across a reload, as a dictionary so that a later version
 * can add fields and still read what an older one saved. */
static GVariant *
hello_save (MynaModule *mod)
{
  Hello *hello = myna_module_get_data (mod);
  g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT (NULL);

  g_variant_dict_insert (&dict, "count", "x", hello->count);
  return g_variant_dict_end (&dict);
}

static void
hello_restore (MynaModule *mod, GVariant *state)
{
  Hello *hello = myna_module_get_data (mod);
  gint64 count = 0;

  if (!g_variant_is_of_type (state, G_VARIANT_TYPE_VARDICT))
    {
      g_warning ("saved state of type %s ignored", g_variant_get_type_string (state));
      return;
    }
  if (g_variant_lookup (state, "count", "x", &count))
    hello->count = count;
}

/* The keys of [module:hello], each named after the field of HelloConfig
 * its value goes to; the generated hello.module repeats them for
 * check-config and lazy routing. */
static const MynaConfigKey hello_config[] = {
  MYNA_CONFIG_STRING (HelloConfig, greeting, "Hello from Myna",
                      "text of the greeting"),
  MYNA_CONFIG_END,
};

MYNA_MODULE_DEFINE (hello,
  .version = "1.0",
  .description = "an example third-party module: greets by IQ and message",
  .serves  = MYNA_STRV (NS_HELLO),
  .features = MYNA_STRV (NS_HELLO),
  .events  = MYNA_STRV (MYNA_EVENT_MESSAGE_HOST),
  .mode    = MYNA_MODULE_LAZY,
  .config  = hello_config,
  .config_size = sizeof (HelloConfig),
  .load    = hello_load,
  .unload  = hello_unload,
  .save    = hello_save,
  .restore = hello_restore);
