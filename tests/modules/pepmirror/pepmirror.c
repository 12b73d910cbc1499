/* pepmirror: a test module using pep/1 as a third party would — it
 * mirrors an account's node urn:test:source into urn:test:mirror (a
 * whitelist node) and back, so that tests see a service publish notify
 * as a client's would, the events, the origin tag stopping bounces,
 * get_items, retract, and a refused publish.
 *
 *  - published to urn:test:source (not by this module): the item's
 *    payload, wrapped in <mirrored xmlns='urn:test' count=N/> (N: the
 *    source's items by get_items), is published to urn:test:mirror under
 *    the same id; an item of id "bad" is published with max_items 0,
 *    which is refused: the error's text goes to urn:test:mirror-errors.
 *  - published to urn:test:mirror by a client: the payload goes to
 *    urn:test:source as it is (which must not come back).
 *  - retracted from urn:test:source: retracted from urn:test:mirror. */
#include <myna/module.h>
#include <myna/pep.h>

#define SOURCE "urn:test:source"
#define MIRROR "urn:test:mirror"
#define ERRORS "urn:test:mirror-errors"
#define ORIGIN "pepmirror"

/* Publishes @item to @node of @owner's account, or logs why not. */
static void
pepmirror_publish (MynaService *pep, MynaHost *host, const char *local, const char *node,
                   MynaStanza *item, MynaStanza *options)
{
  g_autoptr(GError) error = NULL;

  if (myna_pep_publish (pep, host, local, node, item, options, ORIGIN, NULL, NULL, NULL, &error))
    return;
  g_message ("publish to %s refused: %s", node, error->message);
  if (g_strcmp0 (node, ERRORS) != 0)
    {
      g_autoptr(MynaStanza) report = myna_stanza_build ("<item><error xmlns='urn:test'>%s"
                                                        "</error></item>", error->message);
      pepmirror_publish (pep, host, local, ERRORS, report, NULL);
    }
}

static MynaResult
pepmirror_published (MynaCall *call, MynaStanza *fired, gpointer data)
{
  MynaService *pep = data;
  MynaHost *host = myna_call_get_host (call);
  const char *local = myna_jid_get_local (myna_call_get_from (call));
  const char *node = myna_stanza_get_attr (fired, "node");
  MynaStanza *item = myna_stanza_first_element (fired);
  MynaStanza *payload = item != NULL ? myna_stanza_first_element (item) : NULL;
  const char *id = item != NULL ? myna_stanza_get_attr (item, "id") : NULL;

  if (g_strcmp0 (myna_pep_event_origin (fired), ORIGIN) == 0 || payload == NULL || id == NULL)
    return MYNA_PASS;
  if (g_strcmp0 (node, SOURCE) == 0)
    {
      g_autoptr(GPtrArray) items = myna_pep_get_items (pep, host, local, SOURCE, 0, NULL);
      g_autofree char *count = g_strdup_printf ("%u", items != NULL ? items->len : 0);
      g_autoptr(MynaStanza) copy = myna_stanza_build ("<item id='%s'/>", id);
      g_autoptr(MynaStanza) options = myna_stanza_build (
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
        "<field var='pubsub#access_model'><value>whitelist</value></field>"
        "<field var='pubsub#max_items'><value>%s</value></field></x>",
        g_strcmp0 (id, "bad") == 0 ? "0" : "10");
      MynaStanza *wrap = myna_stanza_add_child (copy, "mirrored", "urn:test");

      myna_stanza_set_attr (wrap, "count", count);
      myna_stanza_append (wrap, payload);
      pepmirror_publish (pep, host, local, MIRROR, copy, options);
    }
  else if (g_strcmp0 (node, MIRROR) == 0)
    pepmirror_publish (pep, host, local, SOURCE, item, NULL);
  return MYNA_PASS;
}

static MynaResult
pepmirror_retracted (MynaCall *call, MynaStanza *fired, gpointer data)
{
  MynaService *pep = data;
  MynaStanza *item = myna_stanza_first_element (fired);
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (myna_stanza_get_attr (fired, "node"), SOURCE) != 0 || item == NULL
      || g_strcmp0 (myna_pep_event_origin (fired), ORIGIN) == 0)
    return MYNA_PASS;
  if (!myna_pep_retract (pep, myna_call_get_host (call),
                         myna_jid_get_local (myna_call_get_from (call)), MIRROR,
                         myna_stanza_get_attr (item, "id"), TRUE, ORIGIN, NULL, NULL, NULL,
                         &error))
    g_message ("retract refused: %s", error->message);
  return MYNA_PASS;
}

static gboolean
pepmirror_load (MynaModule *mod, GError **error)
{
  MynaService *pep = myna_module_use (mod, MYNA_PEP_SERVICE, 1, error);

  if (pep == NULL)
    return FALSE;
  myna_module_hook (mod, MYNA_EVENT_PEP_PUBLISHED, 0, pepmirror_published, pep, NULL);
  myna_module_hook (mod, MYNA_EVENT_PEP_RETRACTED, 0, pepmirror_retracted, pep, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (pepmirror,
  .version = "1.0",
  .uses    = MYNA_STRV ("pep/1"),
  .mode    = MYNA_MODULE_EAGER,
  .load    = pepmirror_load);
