/* delivery.c: the last step of routing — handing a stanza to local
 * sessions (RFC 6121 §8.5) — and the MynaCall helpers modules reply with.
 * A stanza going to several sessions is serialised once. */
#include "private.h"
#include "stanza-build.h"

#include <string.h>

/* Whether @target's MYNA_EVENT_STANZA_TO_CLIENT chain takes @stanza over
 * (a module holding or keeping it), as myna_session_send() asks it, or
 * @target is hibernated and nobody took it: either way nothing is
 * written to that session. */
static gboolean
deliver_taken (MynaServer *server, MynaSession *target, MynaStanza *stanza)
{
  MynaJid *jid = myna_session_get_jid (target);
  MynaCall call = { server, myna_session_get_host (target), target, jid, jid };

  if (myna_router_fire (server->router, call.host, MYNA_EVENT_STANZA_TO_CLIENT,
                        &call, stanza) == MYNA_HANDLED)
    return TRUE;
  if (myna_session_is_hibernated (target))
    {
      g_debug ("%s: a <%s/> to a hibernated session, taken by no module, dropped",
               myna_session_get_peer (target), myna_stanza_get_name (stanza));
      return TRUE;
    }
  return FALSE;
}

/* Hands @stanza to every session in @targets: each one's to-client chain
 * first, then the bytes, serialised once, to those it did not take. */
static void
deliver_to (MynaServer *server, GPtrArray *targets, MynaStanza *stanza)
{
  g_autoptr(GString) bytes = NULL;

  for (guint i = 0; i < targets->len; i++)
    {
      if (deliver_taken (server, targets->pdata[i], stanza))
        continue;
      if (bytes == NULL)
        {
          bytes = g_string_sized_new (256);
          myna_stanza_serialize (stanza, MYNA_NS_CLIENT, bytes);
        }
      myna_session_send_raw (targets->pdata[i], bytes->str, (gssize) bytes->len);
      server->stanzas_out++;
    }
}

/* Available resources with the highest non-negative priority. */
static void
pick_for_message (GPtrArray *sessions, GPtrArray *out)
{
  int best = -1;

  for (guint i = 0; i < sessions->len; i++)
    {
      MynaSession *s = sessions->pdata[i];
      int p = myna_session_get_priority (s);
      if (!myna_session_is_available (s) || p < 0)
        continue;
      if (p > best)
        {
          g_ptr_array_set_size (out, 0);
          best = p;
        }
      if (p == best)
        g_ptr_array_add (out, s);
    }
}

/* The sessions @stanza goes to now (RFC 6121 §8.5), as
 * myna_server_deliver() hands it to them.
 * Returns: (transfer container) of borrowed MynaSession* */
static GPtrArray *
recipients (MynaServer *server, MynaStanza *stanza)
{
  GPtrArray *targets = g_ptr_array_new ();
  g_autoptr(MynaJid) to = myna_jid_parse (myna_stanza_get_to (stanza) ?: "", NULL);
  if (to == NULL || myna_jid_get_local (to) == NULL)
    return targets;
  MynaHost *host = myna_server_get_host (server, myna_jid_get_domain (to));
  /* A component has no sessions: its modules deliver what they serve. */
  if (host == NULL || host->component)
    return targets;

  const char *name = myna_stanza_get_name (stanza);
  if (myna_jid_get_resource (to) != NULL)
    {
      MynaSession *s = myna_host_find_session (host, to);
      if (s != NULL)
        g_ptr_array_add (targets, s);
      else if (strcmp (name, "message") == 0)
        {
          /* RFC 6121 §8.5.3.2.1: a message to an unavailable resource of an
           * existing account is treated as sent to the bare JID. */
          g_autoptr(GPtrArray) all = myna_host_get_sessions (host, myna_jid_get_local (to));
          const char *type = myna_stanza_get_type (stanza);
          if (type == NULL || strcmp (type, "chat") == 0 || strcmp (type, "normal") == 0)
            pick_for_message (all, targets);
        }
    }
  else
    {
      g_autoptr(GPtrArray) all = myna_host_get_sessions (host, myna_jid_get_local (to));
      if (strcmp (name, "message") == 0)
        pick_for_message (all, targets);
      else if (strcmp (name, "presence") == 0)
        for (guint i = 0; i < all->len; i++)
          {
            if (myna_session_is_available (all->pdata[i]))
              g_ptr_array_add (targets, all->pdata[i]);
          }
    }
  return targets;
}

guint
myna_server_count_recipients (MynaServer *server, MynaStanza *stanza)
{
  g_return_val_if_fail (server != NULL && stanza != NULL, 0);

  g_autoptr(GPtrArray) targets = recipients (server, stanza);
  return targets->len;
}

guint
myna_server_deliver (MynaServer *server, MynaStanza *stanza)
{
  g_return_val_if_fail (server != NULL && stanza != NULL, 0);

  g_autoptr(GPtrArray) targets = recipients (server, stanza);
  if (targets->len == 0)
    return 0;
  deliver_to (server, targets, stanza);
  return targets->len;
}

void
myna_server_route (MynaServer *server, MynaStanza *stanza)
{
  g_return_if_fail (server != NULL && stanza != NULL);

  g_autoptr(MynaJid) from = myna_jid_parse (myna_stanza_get_from (stanza) ?: "", NULL);
  MynaCall call = { server, NULL, NULL, from, NULL };

  if (from != NULL)
    call.host = myna_server_get_host (server, myna_jid_get_domain (from));
  myna_router_route (server->router, &call, stanza);
}

/* ---- calls ---------------------------------------------------------------- */

MynaServer *
myna_call_get_server (MynaCall *call)
{
  return call->server;
}

MynaHost *
myna_call_get_host (MynaCall *call)
{
  return call->host;
}

MynaSession *
myna_call_get_session (MynaCall *call)
{
  return call->session;
}

MynaJid *
myna_call_get_from (MynaCall *call)
{
  return call->from;
}

MynaJid *
myna_call_get_to (MynaCall *call)
{
  return call->to;
}

void
myna_call_send (MynaCall *call, MynaStanza *stanza)
{
  g_return_if_fail (call != NULL && stanza != NULL);

  /* To the originating session directly when it is still there; replies
   * from the server carry the server's or the addressee's JID as from. */
  if (myna_stanza_get_from (stanza) == NULL && call->to != NULL)
    myna_stanza_set_attr (stanza, "from", myna_jid_to_string (call->to));
  if (call->session != NULL)
    myna_session_send (call->session, stanza);
  else
    myna_server_route (call->server, stanza);
}

void
myna_call_reply_result (MynaCall *call, MynaStanza *iq)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  myna_call_send (call, reply);
}

void
myna_call_reply (MynaCall *call, MynaStanza *iq, const char *payload_format, ...)
{
  va_list args;

  g_return_if_fail (call != NULL && iq != NULL);

  va_start (args, payload_format);
  g_autoptr(MynaStanza) reply = myna_stanza_build_result_valist (iq, payload_format, args);
  va_end (args);
  if (reply != NULL)
    myna_call_send (call, reply);
  else
    myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
}

void
myna_call_reply_error (MynaCall *call, MynaStanza *stanza, MynaErrorType type,
                       const char *condition, const char *text)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_error (stanza, type, condition, text);

  /* The error comes from the entity the stanza was addressed to. */
  if (myna_stanza_get_to (stanza) == NULL)
    myna_stanza_set_attr (reply, "from", NULL);
  myna_call_send (call, reply);
}

MynaResult
myna_host_fire_event (MynaHost *host, const char *event, MynaCall *call,
                      MynaStanza *stanza)
{
  g_return_val_if_fail (host != NULL && event != NULL, MYNA_PASS);
  return myna_router_fire (host->server->router, host, event, call, stanza);
}

MynaCall *
myna_call_new (MynaHost *host, MynaSession *session)
{
  g_return_val_if_fail (host != NULL, NULL);

  MynaCall *call = g_new0 (MynaCall, 1);
  call->server = host->server;
  call->host = host;
  call->session = session;
  call->from = session != NULL && myna_session_get_jid (session) != NULL
                 ? myna_jid_ref (myna_session_get_jid (session))
                 : myna_jid_new (NULL, host->name, NULL, NULL);
  return call;
}

MynaCall *
myna_call_new_for (MynaHost *host, MynaJid *from)
{
  g_return_val_if_fail (host != NULL && from != NULL, NULL);

  MynaCall *call = g_new0 (MynaCall, 1);
  call->server = host->server;
  call->host = host;
  call->from = myna_jid_ref (from);
  return call;
}

void
myna_call_free (MynaCall *call)
{
  if (call == NULL)
    return;
  if (call->from != NULL)
    myna_jid_unref (call->from);
  g_free (call);
}
