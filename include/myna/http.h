/* http.h: HTTP routes — how a module serves requests on the server's HTTP
 * listeners (`[listener:NAME] kind = http`).
 *
 * The core runs one libsoup server on the main loop; a module claims a
 * path prefix with myna_http_route_add() and gets every request whose path
 * is the prefix or lies below it (longest prefix wins; one owner per
 * prefix).  Requests with no route get 404 with a JSON error.  Bodies over
 * the server's limit ([global] http_max_body, 64 KiB by default) are
 * refused with 413 before any handler runs, without being read.  A route
 * may also check each request as soon as its headers are in, before its
 * body is read (myna_http_route_set_check: a bearer token, say).  Each
 * connection carries one request: answers say `Connection: close`.
 *
 * A handler answers with myna_http_request_respond() (or _respond_error())
 * before it returns, or keeps a reference and answers later — from a
 * storage or account callback, say; the request waits meanwhile.  If the
 * client goes away first, myna_http_request_is_open() turns FALSE and a
 * late answer is dropped.
 *
 * A route belongs to the module instance that added it: the core removes
 * it (its destroy notify runs) when that instance unloads, like every
 * other registration; myna_http_route_remove removes it earlier.  No
 * libsoup or json-glib type appears here, so modules need neither to build
 * against this header.  Everything runs on the main loop thread. */
#pragma once

#include <glib.h>
#include <myna/server.h>

G_BEGIN_DECLS

typedef struct _MynaHttpRequest MynaHttpRequest;

/* Called for each request to the route's prefix; @request is borrowed
 * (ref it to answer after returning). */
typedef void (*MynaHttpHandler) (MynaHttpRequest *request, gpointer user_data);

/* Claims @path_prefix ("/api/v1": absolute, no trailing slash, no query)
 * for @handler.  Returns the route's id, or 0 (with a warning) when the
 * prefix is invalid or already owned — then @destroy is not called. */
guint        myna_http_route_add (MynaServer *server, const char *path_prefix,
                                  MynaHttpHandler handler, gpointer user_data,
                                  GDestroyNotify destroy);
/* Makes @check run on each request of the route @route_id once its
 * headers are in, before any of its body is read (the body is "" then),
 * with the route's user data.  A request @check answers — it must do so
 * before returning, or not at all — gets that answer at once: its body is
 * never read, the handler never sees it, and its connection closes.  A
 * request it leaves unanswered goes on to the handler. */
void         myna_http_route_set_check (MynaServer *server, guint route_id,
                                        MynaHttpHandler check);
/* Removes the route @route_id (calls its destroy notify). */
void         myna_http_route_remove (MynaServer *server, guint route_id);
/* Whether at least one HTTP listener is open. */
gboolean     myna_http_is_listening (MynaServer *server);

MynaHttpRequest *myna_http_request_ref (MynaHttpRequest *request);
void         myna_http_request_unref (MynaHttpRequest *request);

/* "GET", "POST", … */
const char  *myna_http_request_get_method (MynaHttpRequest *request);
/* The path as received (still percent-encoded), without the query. */
const char  *myna_http_request_get_path (MynaHttpRequest *request);
/* The part of the path after the route's prefix: "" or "/…". */
const char  *myna_http_request_get_subpath (MynaHttpRequest *request);
/* A query parameter, decoded (application/x-www-form-urlencoded), or NULL. */
const char  *myna_http_request_get_query (MynaHttpRequest *request,
                                          const char *name);
/* A request header, or NULL. */
const char  *myna_http_request_get_header (MynaHttpRequest *request,
                                           const char *name);
/* The request body (NUL-terminated, possibly with NULs inside: use
 * @length) — "" when there is none.  Returns: (transfer none) */
const char  *myna_http_request_get_body (MynaHttpRequest *request,
                                         gsize *length);
/* The client's address, "ip:port". */
const char  *myna_http_request_get_peer (MynaHttpRequest *request);
/* FALSE once answered or once the client is gone. */
gboolean     myna_http_request_is_open (MynaHttpRequest *request);

/* Adds a response header (before responding). */
void         myna_http_request_set_header (MynaHttpRequest *request,
                                           const char *name, const char *value);
/* Answers with @status and @body (@length -1: NUL-terminated; @body may
 * be NULL for none).  Only the first answer counts. */
void         myna_http_request_respond (MynaHttpRequest *request, guint status,
                                        const char *content_type,
                                        const char *body, gssize length);
/* Answers with @status and {"error": "<formatted text>"}. */
void         myna_http_request_respond_error (MynaHttpRequest *request,
                                              guint status,
                                              const char *format, ...)
                                              G_GNUC_PRINTF (3, 4);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaHttpRequest, myna_http_request_unref)

G_END_DECLS
