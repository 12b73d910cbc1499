/* iqtest: a module that sends IQ requests for the tests
 * (myna_module_send_iq) and logs their outcomes.  An
 * <iq type='set'><send xmlns='urn:myna:test:iq' to='JID' timeout='MS'
 * count='N'/></iq> to the host makes it ping JID N times; it answers with
 * <sent id='LAST-ID'/> (myna_call_reply).  Every callback and destroy
 * notify is counted in the IqTestLog the test put on the server. */
#include <myna/module.h>

#include "iqtest.h"

typedef struct {
  MynaModule *mod;
  IqTestLog  *log;
} IqTest;

/* The outcome of one request: counted by kind; the callback must get the
 * instance that sent the request. */
static void
iqtest_outcome (MynaModule *mod, MynaStanza *reply, const GError *error, gpointer data)
{
  IqTest *self = data;

  if (mod != self->mod)
    self->log->bad_context++;
  self->log->last_outcome_us = g_get_monotonic_time ();
  if (reply != NULL)
    g_strlcpy (self->log->reply_from, myna_stanza_get_from (reply) ?: "",
               sizeof self->log->reply_from);
  if (error == NULL)
    {
      g_assert_nonnull (reply);
      self->log->results++;
      return;
    }
  g_strlcpy (self->log->condition, error->message, sizeof self->log->condition);
  if (g_error_matches (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_STANZA))
    {
      g_assert_nonnull (reply);
      self->log->stanza_errors++;
    }
  else if (g_error_matches (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_TIMEOUT))
    {
      g_assert_null (reply);
      self->log->timeouts++;
    }
  else if (g_error_matches (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED))
    self->log->failed++;
}

static void
iqtest_request_done (gpointer data)
{
  IqTest *self = data;
  self->log->destroys++;
}

static MynaResult
iqtest_send (MynaCall *call, MynaStanza *iq, gpointer data)
{
  IqTest *self = data;
  MynaStanza *send = myna_stanza_get_child (iq, "send", IQTEST_NS);
  const char *to = myna_stanza_get_attr (send, "to");
  guint timeout = (guint) g_ascii_strtoull (myna_stanza_get_attr (send, "timeout") ?: "0", NULL, 10);
  guint count = (guint) g_ascii_strtoull (myna_stanza_get_attr (send, "count") ?: "1", NULL, 10);
  g_autofree char *last = NULL;

  for (guint i = 0; i < count; i++)
    {
      g_autoptr(MynaStanza) ping = myna_stanza_build (
          "<iq type='get' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", to);
      myna_module_send_iq (self->mod, ping, timeout, iqtest_outcome, self, iqtest_request_done);
      self->log->sent++;
      g_free (last);
      last = g_strdup (myna_stanza_get_id (ping));
    }
  myna_call_reply (call, iq, "<sent xmlns='" IQTEST_NS "' id='%s'/>", last ?: "");
  return MYNA_HANDLED;
}

static gboolean
iqtest_load (MynaModule *mod, GError **error)
{
  IqTest *self = g_new0 (IqTest, 1);

  self->mod = mod;
  self->log = g_dataset_get_data (myna_module_get_server (mod), IQTEST_LOG);
  if (self->log == NULL)
    {
      g_free (self);
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_CONFIG, "no IqTestLog on the server");
      return FALSE;
    }
  myna_module_set_data (mod, self, g_free);
  myna_module_route_iq (mod, MYNA_IQ_SET, IQTEST_NS, "send", iqtest_send, self, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (iqtest,
  .version = "1.0",
  .serves  = MYNA_STRV (IQTEST_NS),
  .load    = iqtest_load);
