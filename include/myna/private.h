/* private.h: the event of the private module (XEP-0049, jabber:iq:private)
 * through which another module serves some elements of an account's
 * private XML storage itself: bookmarks (XEP-0411: <storage
 * xmlns='storage:bookmarks'/> kept as PEP items), or a third party's.
 *
 * For each get or set an account sends its own private storage, once the
 * request is checked (the sender is the account; the query's children
 * are element(s) in a namespace of their own), the private module fires
 * MYNA_EVENT_PRIVATE_IQ on the host with the request's call and the <iq/>
 * itself (borrowed).  A handler answering MYNA_HANDLED has taken the
 * request over and answers it itself (a set once durable); MYNA_PASS
 * lets the private module store or read it as usual.  A handler takes
 * only the queries it fully serves (usually a query of one element in its
 * namespace). */
#pragma once

#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_NS_PRIVATE      "jabber:iq:private"
/* Fired for each checked private storage request of an account. */
#define MYNA_EVENT_PRIVATE_IQ "private/iq"

G_END_DECLS
