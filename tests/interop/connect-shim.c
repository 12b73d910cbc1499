/* connect-shim: an LD_PRELOAD library for clients that cannot be told a
 * port (xmppc, on libstrophe, always connects to the domain's 5222): with
 * MYNA_SHIM_PORT set, a connect() to an IPv4 address on port 5222 goes to
 * that port instead, and one to an IPv6 address is refused (so the client
 * falls back to IPv4, where the test's mynad listens on 127.0.0.1).
 * Without the variable it changes nothing.  Test data only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

int connect (int fd, const struct sockaddr *addr, socklen_t len);

int
connect (int fd, const struct sockaddr *addr, socklen_t len)
{
  static int (*real) (int, const struct sockaddr *, socklen_t);
  const char *port = getenv ("MYNA_SHIM_PORT");

  if (real == NULL)
    *(void **) &real = dlsym (RTLD_NEXT, "connect");
  if (port != NULL && addr != NULL && addr->sa_family == AF_INET
      && len >= (socklen_t) sizeof (struct sockaddr_in)
      && ntohs (((const struct sockaddr_in *) addr)->sin_port) == 5222)
    {
      struct sockaddr_in a = *(const struct sockaddr_in *) addr;

      a.sin_port = htons ((unsigned short) atoi (port));
      return real (fd, (const struct sockaddr *) &a, sizeof a);
    }
  if (port != NULL && addr != NULL && addr->sa_family == AF_INET6)
    {
      errno = ECONNREFUSED;
      return -1;
    }
  return real (fd, addr, len);
}
