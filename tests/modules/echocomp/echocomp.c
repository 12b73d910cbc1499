/* echocomp: a module serving a whole domain, for the tests of
 * [component:DOMAIN] — echoes messages sent to x@DOMAIN or lobby@DOMAIN
 * back from that JID's /echo resource, answers <query
 * xmlns='urn:myna:test:echo'/> at the domain with the host it runs on and
 * whether the call came with the sender's session, answers presence to
 * x@ or lobby@ as a contact accepting everyone would, and registers disco
 * identities, an item and an XEP-0128 form.  Anything else addressed to
 * the domain is left to the core. */
#include <myna/module.h>

#define NS_ECHO      "urn:myna:test:echo"
#define NS_ECHO_INFO "urn:myna:test:echo:info"

static MynaResult
echocomp_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  MynaStanza *q = myna_stanza_add_child (reply, "query", NS_ECHO);

  myna_stanza_add_text_child (q, "host", myna_host_get_name (myna_call_get_host (call)));
  myna_stanza_add_text_child (q, "session", myna_call_get_session (call) != NULL ? "yes" : "no");
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

/* Echoes a message to x@ or lobby@ the domain, from the /echo resource,
 * routed like any stanza the server sends. */
static MynaResult
echocomp_message (MynaCall *call, MynaStanza *message, gpointer data)
{
  MynaJid *to = myna_call_get_to (call);
  const char *local = myna_jid_get_local (to);
  const char *body = myna_stanza_get_child_text (message, "body");

  if (g_strcmp0 (local, "x") != 0 && g_strcmp0 (local, "lobby") != 0)
    return MYNA_PASS;
  if (g_strcmp0 (myna_stanza_get_type (message), "error") == 0 || body == NULL)
    return MYNA_HANDLED;

  g_autoptr(MynaStanza) echo = myna_stanza_new ("message", MYNA_NS_CLIENT);
  g_autofree char *from = g_strdup_printf ("%s/echo", myna_jid_bare_string (to));
  g_autofree char *text = g_strdup_printf ("echo: %s", body);

  myna_stanza_set_attr (echo, "type", "chat");
  myna_stanza_set_attr (echo, "from", from);
  myna_stanza_set_attr (echo, "to", myna_jid_to_string (myna_call_get_from (call)));
  myna_stanza_add_text_child (echo, "body", text);
  myna_server_route (myna_call_get_server (call), echo);
  return MYNA_HANDLED;
}

/* Presence to x@ or lobby@ the domain: a subscription request is
 * approved ('subscribed', then its presence); a probe or available
 * presence gets the presence of its /echo resource, echoing the status;
 * unavailable gets unavailable.  Other types are taken silently. */
static MynaResult
echocomp_presence (MynaCall *call, MynaStanza *presence, gpointer data)
{
  MynaJid *to = myna_call_get_to (call);
  const char *local = myna_jid_get_local (to);
  const char *type = myna_stanza_get_type (presence);
  const char *status = myna_stanza_get_child_text (presence, "status");
  const char *sender = myna_jid_to_string (myna_call_get_from (call));
  MynaServer *server = myna_call_get_server (call);
  g_autofree char *from = g_strdup_printf ("%s/echo", myna_jid_bare_string (to));
  g_autoptr(MynaStanza) answer = NULL;

  if (g_strcmp0 (local, "x") != 0 && g_strcmp0 (local, "lobby") != 0)
    return MYNA_PASS;
  if (g_strcmp0 (type, "subscribe") == 0)
    {
      g_autoptr(MynaStanza) ok = myna_stanza_build (
          "<presence type='subscribed' from='%s' to='%s'/>", myna_jid_bare_string (to),
          myna_jid_bare_string (myna_call_get_from (call)));
      myna_server_route (server, ok);
    }
  if (type == NULL || g_strcmp0 (type, "subscribe") == 0 || g_strcmp0 (type, "probe") == 0)
    answer = myna_stanza_build ("<presence from='%s' to='%s'><status>echo: %s</status></presence>",
                                from, sender, status != NULL ? status : "");
  else if (g_strcmp0 (type, "unavailable") == 0)
    answer = myna_stanza_build ("<presence type='unavailable' from='%s' to='%s'/>",
                                from, sender);
  if (answer != NULL)
    myna_server_route (server, answer);
  return MYNA_HANDLED;
}

/* The XEP-0128 form: FORM_TYPE and one field. */
static MynaStanza *
echocomp_form (void)
{
  MynaStanza *x = myna_stanza_new ("x", "jabber:x:data");
  MynaStanza *f;

  myna_stanza_set_attr (x, "type", "result");
  f = myna_stanza_add_child (x, "field", NULL);
  myna_stanza_set_attr (f, "var", "FORM_TYPE");
  myna_stanza_set_attr (f, "type", "hidden");
  myna_stanza_add_text_child (f, "value", NS_ECHO_INFO);
  f = myna_stanza_add_child (x, "field", NULL);
  myna_stanza_set_attr (f, "var", "echo#rooms");
  myna_stanza_add_text_child (f, "value", "1");
  return x;
}

static gboolean
echocomp_load (MynaModule *mod, GError **error)
{
  g_autoptr(MynaStanza) form = echocomp_form ();
  g_autofree char *lobby = g_strdup_printf ("lobby@%s",
                                            myna_host_get_name (myna_module_get_host (mod)));

  myna_module_add_feature (mod, NS_ECHO);
  /* Registered out of order: disco answers them sorted. */
  myna_module_add_identity (mod, "conference", "text", "Echo rooms");
  myna_module_add_identity (mod, "component", "generic", "Echo");
  myna_module_add_disco_item (mod, lobby, NULL, "Lobby");
  myna_module_add_disco_extension (mod, form);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_ECHO, "query", echocomp_iq, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_BARE, 0, echocomp_message, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_MESSAGE_FULL, 0, echocomp_message, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_BARE, 0, echocomp_presence, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_FULL, 0, echocomp_presence, NULL, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (echocomp,
  .version = "1.0",
  .serves  = MYNA_STRV (NS_ECHO),
  .mode    = MYNA_MODULE_EAGER,
  .load    = echocomp_load);
