/*
 * LD_PRELOAD shim that lets an unmodified libtcmu (tcmu-runner) talk to
 * cdevemu's emulation of the kernel's TCM-USER generic netlink family.
 *
 * A userspace process cannot register a generic netlink family, so the
 * emulator listens on a NETLINK_USERSOCK socket instead and speaks the same
 * genl-formatted messages there. libtcmu's setup_netlink() needs four calls
 * to find it; this shim changes exactly those, and only when
 * CDEVEMU_TCMU_NETLINK="PORT:FAMILY:GROUP" names the emulator:
 *
 *   genl_connect()          connects on NETLINK_USERSOCK, peer port = PORT,
 *                           so every nl_send*() goes to the emulator;
 *   genl_ops_resolve()      sets the TCM-USER family id to FAMILY (what the
 *                           kernel's genl controller would answer);
 *   genl_ctrl_resolve_grp() answers GROUP for TCM-USER's "config" group;
 *   nl_send_sync()          sends SET_FEATURES to the emulator, which acks
 *                           it, with the wait for that ack bounded.
 *
 * Everything else (nl_recvmsgs_default, genl_handle_msg, nl_send_auto for
 * the *_DONE replies, attribute parsing) is the real libnl on a real
 * socket. Without the variable, and for any other socket or family, each
 * call goes straight to the real libnl (dlsym RTLD_NEXT).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>

#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <netlink/errno.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/mngt.h>

#define FAMILY_NAME "TCM-USER"
#define GROUP_NAME "config"
/* How long nl_send_sync() waits for the emulator's ack before failing. */
#define ACK_TIMEOUT_SEC 10

struct emulator {
	int active;
	uint32_t port;
	int family;
	int group;
};

static struct emulator emulator(void)
{
	struct emulator e = { 0 };
	const char *v = getenv("CDEVEMU_TCMU_NETLINK");
	unsigned port, family, group;
	char tail;

	if (!v)
		return e;
	if (sscanf(v, "%u:%u:%u%c", &port, &family, &group, &tail) != 3 ||
	    port == 0 || family < 16 || family > 0xffff || group < 1 || group > 32) {
		fprintf(stderr, "cdevemu tcmu shim: ignoring CDEVEMU_TCMU_NETLINK=%s (expected PORT:FAMILY:GROUP)\n", v);
		return e;
	}
	e.active = 1;
	e.port = port;
	e.family = (int)family;
	e.group = (int)group;
	return e;
}

static void *real(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);

	if (!fn) {
		fprintf(stderr, "cdevemu tcmu shim: %s not found in libnl\n", name);
		abort();
	}
	return fn;
}

/* A socket genl_connect() below connected to the emulator. */
static int is_emulator_socket(struct nl_sock *sk, const struct emulator *e)
{
	int proto = -1;
	socklen_t len = sizeof(proto);

	if (!e->active || nl_socket_get_fd(sk) < 0)
		return 0;
	if (getsockopt(nl_socket_get_fd(sk), SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
		return 0;
	return proto == NETLINK_USERSOCK && nl_socket_get_peer_port(sk) == e->port;
}

int genl_connect(struct nl_sock *sk)
{
	struct emulator e = emulator();
	int err;

	if (!e.active)
		return ((int (*)(struct nl_sock *))real("genl_connect"))(sk);
	err = nl_connect(sk, NETLINK_USERSOCK);
	if (err < 0)
		return err;
	nl_socket_set_peer_port(sk, e.port);
	return 0;
}

int genl_ops_resolve(struct nl_sock *sk, struct genl_ops *ops)
{
	struct emulator e = emulator();

	/* libtcmu's ops carry no cache ops, whose message type would need setting too. */
	if (!is_emulator_socket(sk, &e) || !ops->o_name || strcmp(ops->o_name, FAMILY_NAME) || ops->o_cache_ops)
		return ((int (*)(struct nl_sock *, struct genl_ops *))real("genl_ops_resolve"))(sk, ops);
	/* What __genl_ops_resolve() stores from the controller's answer. */
	ops->o_id = e.family;
	return 0;
}

int genl_ctrl_resolve_grp(struct nl_sock *sk, const char *family, const char *grp)
{
	struct emulator e = emulator();

	if (!is_emulator_socket(sk, &e) || strcmp(family, FAMILY_NAME) || strcmp(grp, GROUP_NAME))
		return ((int (*)(struct nl_sock *, const char *, const char *))real("genl_ctrl_resolve_grp"))(sk, family, grp);
	return e.group;
}

int nl_send_sync(struct nl_sock *sk, struct nl_msg *msg)
{
	int (*send_sync)(struct nl_sock *, struct nl_msg *) = real("nl_send_sync");
	struct emulator e = emulator();
	struct timeval bound = { .tv_sec = ACK_TIMEOUT_SEC }, saved;
	socklen_t len = sizeof(saved);
	int fd, err;

	if (!is_emulator_socket(sk, &e) || nlmsg_hdr(msg)->nlmsg_type != e.family)
		return send_sync(sk, msg);
	/*
	 * The peer port already points at the emulator; bound the wait for
	 * its ack so a missing emulator fails the call (NLE_AGAIN) instead
	 * of hanging the caller's start-up.
	 */
	fd = nl_socket_get_fd(sk);
	if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &saved, &len) < 0)
		return -NLE_BAD_SOCK;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
	err = send_sync(sk, msg);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &saved, sizeof(saved));
	return err;
}
