/* fanout.c: one rendering of a stanza to many occupants, through the
 * core's myna_server_fanout(): serialised once, each session's to='…'
 * spliced into the bytes; sessions of other servers and components get a
 * routed copy.
 *
 * An occupant's session that is gone (a full JID of a local account with
 * no bound session: it closed and its unavailable presence has not
 * reached the room, or never will) is unavailable, and XEP-0045 has the
 * room drop it.  That cannot happen inside the broadcast, which walks the
 * occupants: each such JID is sent to the room, later (from a timer), as
 * the unavailable presence the session would have sent, so the room's
 * own leave path removes that session (and the occupant with its last
 * one). */
#include "muc.h"

/* The sessions one muc_fanout() found gone, waiting for the timer. */
typedef struct {
  Muc       *muc;
  char      *room;      /* the room's local part */
  GPtrArray *gone;      /* MynaJid* real full JIDs, owned */
} FanoutGone;

static void
fanout_gone_free (gpointer data)
{
  FanoutGone *g = data;

  g_free (g->room);
  g_ptr_array_unref (g->gone);
  g_free (g);
}

/* The timer (once): each gone session still gone and still an occupant
 * leaves the room as if it had sent unavailable presence. */
static gboolean
fanout_gone_fire (MynaModule *mod, gpointer data)
{
  FanoutGone *g = data;
  MucRoom *room = muc_room_find (g->muc, g->room);

  for (guint i = 0; room != NULL && i < g->gone->len; i++)
    {
      MynaJid *real = g->gone->pdata[i];
      MucOccupant *occ = muc_room_find_by_real (room, real);
      MynaHost *host = myna_server_get_host (g->muc->server, myna_jid_get_domain (real));

      if (occ == NULL || (host != NULL && myna_host_find_session (host, real) != NULL))
        continue;
      g_info ("%s: %s has no session any more: it leaves the room",
              myna_jid_to_string (room->jid), myna_jid_to_string (real));
      g_autoptr(MynaStanza) leave = myna_stanza_new ("presence", MYNA_NS_CLIENT);
      myna_stanza_set_attr (leave, "type", "unavailable");
      myna_stanza_set_attr (leave, "from", myna_jid_to_string (real));
      myna_stanza_set_attr (leave, "to", myna_jid_to_string (occ->jid));
      myna_server_route (g->muc->server, leave);
      /* The leave may have destroyed a temporary room. */
      room = muc_room_find (g->muc, g->room);
    }
  return FALSE;
}

void
muc_fanout (Muc *muc, MynaStanza *stanza, GPtrArray *to)
{
  g_autoptr(GPtrArray) gone = g_ptr_array_new ();
  g_autoptr(MynaJid) from = NULL;

  g_return_if_fail (muc != NULL && stanza != NULL && to != NULL);

  myna_server_fanout (muc->server, stanza, to, gone);
  if (gone->len == 0)
    return;
  from = myna_jid_parse (myna_stanza_get_from (stanza) ?: "", NULL);
  if (from == NULL || myna_jid_get_local (from) == NULL)
    return;
  FanoutGone *g = g_new0 (FanoutGone, 1);
  g->muc = muc;
  g->room = g_strdup (myna_jid_get_local (from));
  g->gone = g_ptr_array_new_full (gone->len, (GDestroyNotify) myna_jid_unref);
  for (guint i = 0; i < gone->len; i++)
    g_ptr_array_add (g->gone, myna_jid_ref (gone->pdata[i]));
  /* A module timer: an unload before it fires frees @g. */
  myna_module_add_timer (muc->mod, 0, fanout_gone_fire, g, fanout_gone_free);
}
