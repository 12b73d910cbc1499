/* service.c: the service registry — named, versioned tables of functions
 * that one module provides and others use (include/myna/module.h,
 * "Services").
 *
 * Everything is per host; the modules of a [component:DOMAIN] use the
 * services of its main host (MynaHost.service_host: the host it is a
 * subdomain of), which has accounts and rosters.  A provision is (host, name) → the providing
 * instance, its version and its table; one provider per (host, name).  A
 * handle (MynaService) is what a user got from myna_module_use, or from
 * myna_host_get_service for any host (one handle per user, host and
 * name): it names the service and the minimum version, and is bound to a
 * provision or not.  Handles belong to their user instance and are freed when it is
 * finalised (after its pending callbacks ran, so none can call a freed
 * handle); between its unload and then they are "detached": never bound
 * again, and they no longer keep the provider from unloading.
 *
 * When a provider unloads, its provisions go and the handles bound to them
 * are unbound (their wrappers then do nothing); when an instance provides
 * a name (a reload's new instance, or a provider loaded after an optional
 * user), every attached handle of the host waiting for that name with a
 * version it satisfies is bound to it: that is how users follow a reload.
 *
 * The registry has no lock: modules load, unload and call services on the
 * main thread. */
#include "private.h"

#include <string.h>

/* One service offered on a host. */
typedef struct {
  char          *name;
  guint          version;
  MynaModule    *provider;
  MynaHost      *host;
  gconstpointer  table;
} Provision;

struct _MynaService {
  char          *name;
  guint          min_version;
  gboolean       required;   /* declared in the user's `.uses` */
  MynaModule    *user;
  MynaHost      *host;
  gboolean       attached;   /* the user is loaded */
  Provision     *bound;      /* NULL while unbound */
};

struct _MynaServices {
  GPtrArray *provisions;   /* Provision* */
  GPtrArray *handles;      /* MynaService* */
};

static void
provision_free (Provision *p)
{
  g_free (p->name);
  g_free (p);
}

static void
handle_free (MynaService *svc)
{
  g_free (svc->name);
  g_free (svc);
}

MynaServices *
myna_services_new (void)
{
  MynaServices *services = g_new0 (MynaServices, 1);

  services->provisions = g_ptr_array_new_with_free_func ((GDestroyNotify) provision_free);
  services->handles = g_ptr_array_new_with_free_func ((GDestroyNotify) handle_free);
  return services;
}

void
myna_services_free (MynaServices *services)
{
  if (services == NULL)
    return;
  g_ptr_array_unref (services->handles);
  g_ptr_array_unref (services->provisions);
  g_free (services);
}

gboolean
myna_service_parse_spec (const char *spec, char **name, guint *version)
{
  const char *slash = spec != NULL ? strrchr (spec, '/') : NULL;
  guint64 v = 0;

  if (slash == NULL || slash == spec
      || !g_ascii_string_to_unsigned (slash + 1, 10, 1, G_MAXUINT, &v, NULL))
    return FALSE;
  if (name != NULL)
    *name = g_strndup (spec, (gsize) (slash - spec));
  if (version != NULL)
    *version = (guint) v;
  return TRUE;
}

gboolean
myna_service_spec_lists (char **specs, const char *name, guint *version)
{
  for (guint i = 0; specs != NULL && specs[i] != NULL; i++)
    {
      g_autofree char *n = NULL;
      guint v;

      if (myna_service_parse_spec (specs[i], &n, &v) && strcmp (n, name) == 0)
        {
          if (version != NULL)
            *version = v;
          return TRUE;
        }
    }
  return FALSE;
}

static Provision *
provision_find (MynaServices *services, MynaHost *host, const char *name)
{
  for (guint i = 0; i < services->provisions->len; i++)
    {
      Provision *p = services->provisions->pdata[i];
      if (p->host == host && strcmp (p->name, name) == 0)
        return p;
    }
  return NULL;
}

static void
handle_bind (MynaService *svc, Provision *p)
{
  svc->bound = p;
  g_debug ("host %s: module %s bound to %s/%u of module %s", svc->host->name,
           myna_module_get_name (svc->user), p->name, p->version,
           myna_module_get_name (p->provider));
}

/* @user's handle on @name of @host, or NULL. */
static MynaService *
handle_find (MynaServices *services, MynaModule *user, MynaHost *host, const char *name)
{
  for (guint i = 0; i < services->handles->len; i++)
    {
      MynaService *svc = services->handles->pdata[i];
      if (svc->user == user && svc->host == host && strcmp (svc->name, name) == 0)
        return svc;
    }
  return NULL;
}

/* A new attached, unbound handle of @user on @name of @host, kept in
 * @services until the user is finalised.  Returns: (transfer none) */
static MynaService *
handle_new (MynaServices *services, MynaModule *user, MynaHost *host, const char *name,
            guint min_version, gboolean required)
{
  MynaService *svc = g_new0 (MynaService, 1);

  svc->name = g_strdup (name);
  svc->min_version = min_version;
  svc->required = required;
  svc->user = user;
  svc->host = host;
  svc->attached = TRUE;
  g_ptr_array_add (services->handles, svc);
  return svc;
}

gboolean
myna_module_provide (MynaModule *mod, const char *name, guint version,
                     gconstpointer table, GError **error)
{
  g_return_val_if_fail (mod != NULL && name != NULL && version > 0 && table != NULL, FALSE);

  MynaServices *services = myna_module_get_services (mod);
  MynaHost *host = myna_module_get_host (mod);
  const char *me = myna_module_get_name (mod);
  guint declared = 0;
  Provision *p;

  if (!myna_service_spec_lists (myna_module_get_manifest (mod)->provides, name, &declared)
      || declared != version)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                   "module %s provides %s/%u without declaring it: add \"%s/%u\" to "
                   ".provides (and to its manifest's provides=)", me, name, version,
                   name, version);
      return FALSE;
    }
  p = provision_find (services, host, name);
  if (p != NULL)
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                   "host %s: %s/%u is provided by module %s already: module %s cannot "
                   "provide it too", host->name, name, p->version,
                   myna_module_get_name (p->provider), me);
      return FALSE;
    }
  p = g_new0 (Provision, 1);
  p->name = g_strdup (name);
  p->version = version;
  p->provider = mod;
  p->host = host;
  p->table = table;
  g_ptr_array_add (services->provisions, p);
  g_debug ("host %s: module %s provides %s/%u", host->name, me, name, version);
  /* Users waiting for it: a reload's new instance, or a provider loaded
   * after an optional user. */
  for (guint i = 0; i < services->handles->len; i++)
    {
      MynaService *svc = services->handles->pdata[i];
      if (svc->attached && svc->bound == NULL && svc->host == host
          && strcmp (svc->name, name) == 0)
        {
          if (svc->min_version <= version)
            handle_bind (svc, p);
          else
            g_warning ("host %s: module %s needs %s/%u at least; module %s provides "
                       "version %u: left unbound", host->name,
                       myna_module_get_name (svc->user), name, svc->min_version, me, version);
        }
    }
  return TRUE;
}

MynaService *
myna_module_use (MynaModule *mod, const char *name, guint min_version, GError **error)
{
  g_return_val_if_fail (mod != NULL && name != NULL && min_version > 0, NULL);

  MynaServices *services = myna_module_get_services (mod);
  /* A component's modules use the services of its main host. */
  MynaHost *host = myna_module_get_host (mod)->service_host;
  const char *me = myna_module_get_name (mod);
  guint declared = 0;
  gboolean required = myna_service_spec_lists (myna_module_get_manifest (mod)->uses, name,
                                               &declared);
  Provision *p = provision_find (services, host, name);
  MynaService *svc;

  if (required && declared > min_version)
    min_version = declared;
  if (p != NULL && p->version < min_version)
    {
      if (required)
        {
          g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                       "host %s: module %s needs %s/%u; module %s provides version %u",
                       host->name, me, name, min_version,
                       myna_module_get_name (p->provider), p->version);
          return NULL;
        }
      g_info ("host %s: module %s would use %s/%u; module %s provides version %u only",
              host->name, me, name, min_version, myna_module_get_name (p->provider),
              p->version);
      p = NULL;
    }
  if (p == NULL && required && !myna_module_provider_loading (mod, name))
    {
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                   "host %s: module %s uses %s/%u, which no loaded module provides",
                   host->name, me, name, min_version);
      return NULL;
    }
  /* One handle per (user, host, name): a second call hands the same back. */
  svc = handle_find (services, mod, host, name);
  if (svc != NULL)
    return svc;
  svc = handle_new (services, mod, host, name, min_version, required);
  if (p != NULL)
    handle_bind (svc, p);
  else
    g_debug ("host %s: module %s waits for %s/%u", host->name, me, name, min_version);
  return svc;
}

MynaService *
myna_host_get_service (MynaHost *host, const char *name, guint min_version)
{
  MynaModule *mod = myna_module_current ();

  g_return_val_if_fail (host != NULL && name != NULL && min_version > 0, NULL);
  g_return_val_if_fail (mod != NULL, NULL);    /* module code only */

  MynaServices *services = myna_module_get_services (mod);
  MynaHost *own = myna_module_get_host (mod)->service_host;
  guint declared = 0;
  gboolean listed = myna_service_spec_lists (myna_module_get_manifest (mod)->uses, name,
                                             &declared);
  MynaService *svc;
  Provision *p;

  host = host->service_host;
  svc = handle_find (services, mod, host, name);
  if (svc != NULL)
    return svc;
  if (listed && declared > min_version)
    min_version = declared;
  /* Only the user's own host's provider is kept loaded for it: another
   * host's is used while it is there. */
  svc = handle_new (services, mod, host, name, min_version, listed && host == own);
  /* A pending callback of an unloaded instance: bound to what is there
   * now, never re-bound. */
  if (myna_module_refuses (mod, "a new service handle", NULL, NULL))
    svc->attached = FALSE;
  p = provision_find (services, host, name);
  if (p != NULL && p->version >= min_version)
    handle_bind (svc, p);
  return svc;
}

gconstpointer
myna_service_get_table (MynaService *svc)
{
  return svc != NULL && svc->bound != NULL ? svc->bound->table : NULL;
}

guint
myna_service_get_version (MynaService *svc)
{
  return svc != NULL && svc->bound != NULL ? svc->bound->version : 0;
}

MynaModule *
myna_service_get_provider (MynaService *svc)
{
  return svc != NULL && svc->bound != NULL ? svc->bound->provider : NULL;
}

MynaModule *
myna_service_enter (MynaService *svc)
{
  MynaModule *provider = myna_service_get_provider (svc);

  /* Unbound: the caller stays who it is (the wrappers do not call then). */
  return myna_module_enter (provider != NULL ? provider : myna_module_current ());
}

void
myna_service_leave (MynaModule *previous)
{
  myna_module_leave (previous);
}

void
myna_services_unregister (MynaServices *services, MynaModule *mod)
{
  for (guint i = 0; i < services->handles->len; i++)
    {
      MynaService *svc = services->handles->pdata[i];

      if (svc->user == mod)
        svc->attached = FALSE;
      if (svc->bound != NULL && svc->bound->provider == mod)
        {
          g_debug ("host %s: module %s unbound from %s (module %s unloads)",
                   svc->host->name, myna_module_get_name (svc->user), svc->name,
                   myna_module_get_name (mod));
          svc->bound = NULL;
        }
    }
  for (guint i = services->provisions->len; i > 0; i--)
    {
      Provision *p = services->provisions->pdata[i - 1];
      if (p->provider == mod)
        g_ptr_array_remove_index (services->provisions, i - 1);
    }
}

void
myna_services_finalize (MynaServices *services, MynaModule *mod)
{
  for (guint i = services->handles->len; i > 0; i--)
    {
      MynaService *svc = services->handles->pdata[i - 1];
      if (svc->user == mod)
        g_ptr_array_remove_index (services->handles, i - 1);
    }
}

GPtrArray *
myna_services_users_of (MynaServices *services, MynaModule *provider, GString *what)
{
  GPtrArray *users = g_ptr_array_new ();

  for (guint i = 0; i < services->handles->len; i++)
    {
      MynaService *svc = services->handles->pdata[i];

      if (!svc->attached || !svc->required || svc->bound == NULL
          || svc->bound->provider != provider || svc->user == provider)
        continue;
      if (!g_ptr_array_find (users, svc->user, NULL))
        g_ptr_array_add (users, svc->user);
      if (what != NULL)
        {
          g_autofree char *spec = g_strdup_printf ("%s/%u", svc->name, svc->bound->version);
          if (strstr (what->str, spec) == NULL)
            g_string_append_printf (what, "%s%s", what->len > 0 ? ", " : "", spec);
        }
    }
  return users;
}

gboolean
myna_services_check_provides (MynaServices *services, MynaModule *provider,
                              char **provides, GError **error)
{
  for (guint i = 0; i < services->handles->len; i++)
    {
      MynaService *svc = services->handles->pdata[i];
      guint version = 0;

      if (!svc->attached || !svc->required || svc->bound == NULL
          || svc->bound->provider != provider || svc->user == provider)
        continue;
      if (!myna_service_spec_lists (provides, svc->name, &version)
          || version < svc->min_version)
        {
          g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                       "the new %s does not provide %s/%u, which module %s on %s uses "
                       "(it provides %s)", myna_module_get_name (provider), svc->name,
                       svc->min_version, myna_module_get_name (svc->user), svc->host->name,
                       provides[0] != NULL ? "other versions or services" : "no service");
          return FALSE;
        }
    }
  return TRUE;
}
