/* Test harness: a TCP proxy between clients and one server (a process and its PostgreSQL), that
 * a test can freeze and thaw. Frozen, it forwards nothing and accepts nothing, but closes
 * nothing either: to both ends the connections look alive and silent, as across a network that
 * drops every packet without resetting anything. Thawed, it forwards again what waited. */
#ifndef OMO_TEST_PROXY_H
#define OMO_TEST_PROXY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct omo_test_proxy omo_test_proxy;

/* Listens on a free port of 127.0.0.1 and forwards every connection to host:port, from a
 * thread of its own. Returns NULL with err filled on failure. */
omo_test_proxy *omo_test_proxy_start(const char *host, int port, char *err, size_t errlen);
/* The port it listens on. */
int omo_test_proxy_port(const omo_test_proxy *proxy);
/* Stops (frozen) or resumes forwarding and accepting. Once it returns, no byte moves until
 * thawed. */
void omo_test_proxy_freeze(omo_test_proxy *proxy, bool frozen);
/* Connections accepted so far. */
size_t omo_test_proxy_connections(const omo_test_proxy *proxy);
/* Closes every connection and stops. Accepts NULL. */
void omo_test_proxy_stop(omo_test_proxy *proxy);

#endif
