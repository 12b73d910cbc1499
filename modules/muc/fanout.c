/* fanout.c: one stanza to many occupants.
 * Stub: a copy per recipient, routed; the fan-out work replaces it with
 * the core's serialise-once delivery. */
#include "muc.h"

void
muc_fanout (Muc *muc, MynaStanza *stanza, GPtrArray *to)
{
  for (guint i = 0; i < to->len; i++)
    {
      g_autoptr(MynaStanza) copy = myna_stanza_copy (stanza);

      myna_stanza_set_attr (copy, "to", myna_jid_to_string (to->pdata[i]));
      myna_server_route (muc->server, copy);
    }
}
