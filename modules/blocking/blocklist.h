/* blocklist.h: one user's block list (XEP-0191) as a set.
 *
 * The blocked JIDs are kept in a hash set keyed by their normalised
 * string, so adding, removing and testing one JID cost one lookup, and
 * deciding whether a stanza's sender is blocked (XEP-0191 §3, as
 * XEP-0016: the item user@domain/resource, user@domain, domain/resource,
 * or the domain or a parent domain) costs one lookup per form plus one per
 * label of its domain: never a walk over the list.  A list of tens of
 * thousands of JIDs thus costs what a short one costs per stanza, and
 * unblocking them all is linear.
 *
 * Free of server state, so a unit test compiles it alone. */
#pragma once

#include <myna/jid.h>

G_BEGIN_DECLS

typedef struct _BlockList BlockList;

BlockList *block_list_new (void);
void       block_list_free (BlockList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BlockList, block_list_free)

guint      block_list_size (BlockList *list);
/* Adds @jid (a reference is taken); FALSE when it was there already. */
gboolean   block_list_add (BlockList *list, MynaJid *jid);
/* Removes @jid; FALSE when it was not there. */
gboolean   block_list_remove (BlockList *list, MynaJid *jid);
gboolean   block_list_contains (BlockList *list, MynaJid *jid);
/* Whether an item of the list matches @jid (XEP-0191 §3). */
gboolean   block_list_matches (BlockList *list, MynaJid *jid);
/* The items, sorted by their string.  Returns: (transfer full) an array
 * of MynaJid references */
GPtrArray *block_list_items (BlockList *list);
/* Empties the list.  Returns: (transfer full) what it held, unsorted */
GPtrArray *block_list_take_all (BlockList *list);
/* Hash lookups made so far (for tests of the cost of matching). */
guint64    block_list_get_lookups (BlockList *list);

G_END_DECLS
