/*
 * Does what libtcmu's setup_netlink() does first, and prints what it got:
 * the socket's protocol after genl_connect(), the id genl_ctrl_resolve()
 * and genl_ops_resolve() find for a family, and the group
 * genl_ctrl_resolve_grp() finds. Run with and without the tcmu netlink
 * shim preloaded (test/tcmu/shim.test.ts).
 *
 *   genl_probe FAMILY GROUP
 */
#include <stdio.h>
#include <sys/socket.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/mngt.h>

int main(int argc, char **argv)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct genl_ops ops = { .o_name = argv[1] };
	int proto = -1, err;
	socklen_t len = sizeof(proto);

	if (argc != 3 || !sk)
		return 2;
	err = genl_connect(sk);
	if (err < 0) {
		printf("connect %d\n", err);
		return 1;
	}
	getsockopt(nl_socket_get_fd(sk), SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	err = genl_ops_resolve(sk, &ops);
	printf("protocol %d peer %u ops %d id %d group %d\n", proto, nl_socket_get_peer_port(sk), err, ops.o_id,
	       genl_ctrl_resolve_grp(sk, argv[1], argv[2]));
	nl_socket_free(sk);
	return 0;
}
