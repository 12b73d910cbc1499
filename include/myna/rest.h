/* rest.h: the REST API's service ("rest/1"), provided by the rest module
 * (the HTTP administration API, docs/HTTP-API.md), for modules that add
 * their own routes to that API (push's /api/v1/notifications) and must
 * take the same bearer token.
 *
 *   MYNA_MODULE_DEFINE (mine, …, .uses = MYNA_STRV ("rest/1"));
 *   static MynaService *rest;
 *   … in load:  rest = myna_module_use (mod, MYNA_REST_SERVICE, 1, error);
 *               route = myna_http_route_add (server, "/api/v1/mine", handle, …);
 *               myna_http_route_set_check (server, route, check);
 *   … check:    myna_rest_authorize_any (rest, request);  (answers 401 itself)
 *   … handler:  if (!myna_rest_authorize (rest, request)) return;  (answered)
 *
 * A token is right when it is the `token` of [module:rest] (or a host's
 * `rest.token`) of the host: compared through SHA-256 digests in constant
 * time, as the rest module's own routes do.  A wrong or missing one gets
 * 401 with `WWW-Authenticate: Bearer` and {"error": …}, as there.  While
 * no rest module is bound the wrappers refuse every request (401).  The
 * wrappers run the rest module's code as the rest module
 * (myna_service_enter). */
#pragma once

#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_REST_SERVICE "rest"
/* The prefix of the API's routes. */
#define MYNA_REST_PREFIX  "/api/v1"

/* The table of rest/1.  Fields are only ever added at the end, with a
 * new version; @size is sizeof the provider's table. */
typedef struct {
  gsize     size;
  /* Whether @request carries @host's token (NULL @host: any host's that
   * serves the API).  Answers nothing. */
  gboolean (*token_ok)     (MynaHost *host, MynaHttpRequest *request);
  /* As token_ok, but a request without the right token is answered 401
   * (and logged at debug level); FALSE then. */
  gboolean (*authorize)    (MynaHost *host, MynaHttpRequest *request);
} MynaRestService;

/* The table while a rest module is bound (NULL otherwise). */
static inline const MynaRestService *
myna_rest_table (MynaService *rest)
{
  return (const MynaRestService *) myna_service_get_table (rest);
}

/* Calls the provider's @authorize for its host (@any: for any host). */
static inline gboolean
myna_rest_authorize_for (MynaService *rest, MynaHttpRequest *request, gboolean any)
{
  const MynaRestService *t = myna_rest_table (rest);
  MynaModule *provider = myna_service_get_provider (rest);
  MynaModule *previous;
  gboolean ok;

  if (t == NULL || provider == NULL)
    {
      myna_http_request_set_header (request, "WWW-Authenticate", "Bearer realm=\"myna\"");
      myna_http_request_respond_error (request, 401, "a valid bearer token is required");
      return FALSE;
    }
  previous = myna_service_enter (rest);
  ok = t->authorize (any ? NULL : myna_module_get_host (provider), request);
  myna_service_leave (previous);
  return ok;
}

/* Whether @request carries the token of the rest module's host; if not,
 * answers it 401 and returns FALSE.  A handler returns at once then. */
static inline gboolean
myna_rest_authorize (MynaService *rest, MynaHttpRequest *request)
{
  return myna_rest_authorize_for (rest, request, FALSE);
}

/* As myna_rest_authorize, for the token of any host serving the API: the
 * check of a route shared by several hosts (myna_http_route_set_check),
 * before the request names its host. */
static inline gboolean
myna_rest_authorize_any (MynaService *rest, MynaHttpRequest *request)
{
  return myna_rest_authorize_for (rest, request, TRUE);
}

/* Whether @request carries the token of the rest module's host (@any:
 * of any host's), answering nothing; FALSE while no rest module is bound. */
static inline gboolean
myna_rest_token_ok (MynaService *rest, MynaHttpRequest *request, gboolean any)
{
  const MynaRestService *t = myna_rest_table (rest);
  MynaModule *provider = myna_service_get_provider (rest);
  MynaModule *previous;
  gboolean ok;

  if (t == NULL || provider == NULL)
    return FALSE;
  previous = myna_service_enter (rest);
  ok = t->token_ok (any ? NULL : myna_module_get_host (provider), request);
  myna_service_leave (previous);
  return ok;
}

G_END_DECLS
