/*
 * The process events connector's messages, laid out by the kernel's own
 * headers (<linux/connector.h>, <linux/cn_proc.h>), for
 * test/netlink/cn-proc.test.ts: each written to stdout as one line of hex,
 * the request to listen first, then an answer, a fork, an exec, a comm
 * and an exit event as cn_proc.c fills them in.
 */
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>

static void put(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
}

struct event_msg {
	struct nlmsghdr nl;
	struct cn_msg cn;
	struct proc_event ev;
} __attribute__((packed));

static void event(struct proc_event *ev)
{
	struct event_msg m;
	memset(&m, 0, sizeof(m));
	m.nl.nlmsg_len = sizeof(m);
	m.nl.nlmsg_type = NLMSG_DONE;
	m.cn.id.idx = CN_IDX_PROC;
	m.cn.id.val = CN_VAL_PROC;
	m.cn.seq = 77;
	m.cn.ack = 0;
	m.cn.len = sizeof(*ev);
	memcpy(&m.ev, ev, sizeof(*ev));
	put(&m, sizeof(m));
}

int main(void)
{
	struct {
		struct nlmsghdr nl;
		struct cn_msg cn;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) listen;
	memset(&listen, 0, sizeof(listen));
	listen.nl.nlmsg_len = sizeof(listen);
	listen.nl.nlmsg_type = NLMSG_DONE;
	listen.nl.nlmsg_pid = 4321;
	listen.cn.id.idx = CN_IDX_PROC;
	listen.cn.id.val = CN_VAL_PROC;
	listen.cn.ack = 123456;
	listen.cn.len = sizeof(listen.op);
	listen.op = PROC_CN_MCAST_LISTEN;
	put(&listen, sizeof(listen));

	struct proc_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_NONE;
	ev.event_data.ack.err = 1; /* EPERM */
	{
		/* cn_proc_ack(): the answer's ack is the request's plus one. */
		struct event_msg m;
		memset(&m, 0, sizeof(m));
		m.nl.nlmsg_len = sizeof(m);
		m.nl.nlmsg_type = NLMSG_DONE;
		m.cn.id.idx = CN_IDX_PROC;
		m.cn.id.val = CN_VAL_PROC;
		m.cn.ack = 123456 + 1;
		m.cn.len = sizeof(ev);
		m.ev = ev;
		put(&m, sizeof(m));
	}

	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_FORK;
	ev.timestamp_ns = 1000;
	ev.event_data.fork.parent_pid = 10;
	ev.event_data.fork.parent_tgid = 11;
	ev.event_data.fork.child_pid = 12;
	ev.event_data.fork.child_tgid = 13;
	event(&ev);

	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_EXEC;
	ev.timestamp_ns = 2000;
	ev.event_data.exec.process_pid = 20;
	ev.event_data.exec.process_tgid = 21;
	event(&ev);

	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_COMM;
	ev.timestamp_ns = 3000;
	ev.event_data.comm.process_pid = 30;
	ev.event_data.comm.process_tgid = 31;
	strcpy(ev.event_data.comm.comm, "worker-7");
	event(&ev);

	memset(&ev, 0, sizeof(ev));
	ev.what = PROC_EVENT_EXIT;
	ev.timestamp_ns = 0x123456789aULL;
	ev.event_data.exit.process_pid = 40;
	ev.event_data.exit.process_tgid = 41;
	ev.event_data.exit.exit_code = 11 | 0x80; /* SIGSEGV, core dumped */
	ev.event_data.exit.exit_signal = 17;      /* SIGCHLD */
	ev.event_data.exit.parent_pid = 42;
	ev.event_data.exit.parent_tgid = 43;
	event(&ev);
	return 0;
}
