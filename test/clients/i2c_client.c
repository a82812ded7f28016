/*
 * i2c_client PATH: drives an emulated /dev/i2c-N (test/models/i2c.test.ts)
 * with good and bad pointers and out-of-range arguments, the way programs
 * call i2c-dev, and prints one line per case: "NAME ok RESULT BYTES" or
 * "NAME errno ERRNAME BYTES", BYTES being what a read buffer holds
 * afterwards (hex). The bus has an EEPROM at 0x50, registers at 0x20, a
 * driver-bound chip at 0x21 and a 10-bit chip at 0x3a5; 0x51 is empty.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int fd;

static void report(const char *name, long r, const unsigned char *buf, size_t n) {
	if (r < 0) printf("%s errno %s ", name, strerrorname_np(errno));
	else printf("%s ok %ld ", name, r);
	for (size_t i = 0; i < n; i++) printf("%02x", buf[i]);
	printf("\n");
	fflush(stdout);
}

static long rdwr(struct i2c_msg *msgs, unsigned n) {
	struct i2c_rdwr_ioctl_data d = { msgs, n };
	return ioctl(fd, I2C_RDWR, &d);
}

static long smbus(char rw, uint8_t cmd, uint32_t size, union i2c_smbus_data *data) {
	struct i2c_smbus_ioctl_data a = { rw, cmd, size, data };
	return ioctl(fd, I2C_SMBUS, &a);
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	fd = open(argv[1], O_RDWR);
	if (fd < 0) { printf("open errno %s\n", strerrorname_np(errno)); return 1; }
	long page = sysconf(_SC_PAGESIZE);
	unsigned char buf[64], big[8200];
	unsigned long funcs = 0;
	void *wild = (void *)16;

	report("funcs", ioctl(fd, I2C_FUNCS, &funcs), (unsigned char *)&funcs, sizeof funcs);
	/* 1 when it is what <linux/i2c.h> calls I2C, 10-bit addresses and every emulated SMBus transaction. */
	report("funcs-header", funcs == (I2C_FUNC_I2C | I2C_FUNC_10BIT_ADDR | I2C_FUNC_SMBUS_EMUL_ALL), buf, 0);
	report("funcs-bad", ioctl(fd, I2C_FUNCS, wild), buf, 0);

	/* I2C_RDWR: a write of the word address, a read after a repeated START. */
	unsigned char at0[] = { 0x00 };
	memset(buf, 0, sizeof buf);
	struct i2c_msg good[] = { { 0x50, 0, 1, at0 }, { 0x50, I2C_M_RD, 4, buf } };
	report("rdwr-good", rdwr(good, 2), buf, 4);
	report("rdwr-null-arg", ioctl(fd, I2C_RDWR, NULL), buf, 0);
	struct i2c_rdwr_ioctl_data wild_msgs = { wild, 1 };
	report("rdwr-bad-msgs", ioctl(fd, I2C_RDWR, &wild_msgs), buf, 0);
	struct i2c_rdwr_ioctl_data no_msgs = { NULL, 1 };
	report("rdwr-no-msgs", ioctl(fd, I2C_RDWR, &no_msgs), buf, 0);
	report("rdwr-zero", rdwr(good, 0), buf, 0);
	struct i2c_msg many[I2C_RDWR_IOCTL_MAX_MSGS + 1];
	for (int i = 0; i <= I2C_RDWR_IOCTL_MAX_MSGS; i++) many[i] = (struct i2c_msg){ 0x50, 0, 1, at0 };
	report("rdwr-43", rdwr(many, I2C_RDWR_IOCTL_MAX_MSGS + 1), buf, 0);
	report("rdwr-42", rdwr(many, I2C_RDWR_IOCTL_MAX_MSGS), buf, 0);
	struct i2c_msg toolong[] = { { 0x50, I2C_M_RD, 8193, big } };
	report("rdwr-8193", rdwr(toolong, 1), buf, 0);
	struct i2c_msg bad_wbuf[] = { { 0x50, 0, 1, wild } };
	report("rdwr-bad-wbuf", rdwr(bad_wbuf, 1), buf, 0);
	/* i2cdev_ioctl_rdwr() copies read buffers in too: a bad one fails before the transfer. */
	unsigned char set_reg[] = { 0x40, 0xa5 };
	struct i2c_msg bad_rbuf[] = { { 0x20, 0, 2, set_reg }, { 0x50, I2C_M_RD, 1, wild } };
	report("rdwr-bad-rbuf", rdwr(bad_rbuf, 2), buf, 0);
	/* A read buffer that can be read but not written: the transfer happens, the copy back fails. */
	unsigned char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char set_reg2[] = { 0x41, 0x5a };
	struct i2c_msg ro_rbuf[] = { { 0x20, 0, 2, set_reg2 }, { 0x50, I2C_M_RD, 1, ro } };
	report("rdwr-ro-rbuf", rdwr(ro_rbuf, 2), ro, 1);
	/* I2C_M_RECV_LEN: buf[0] says how many bytes come with the count; the buffer must hold a 32-byte block more. */
	memset(buf, 0, sizeof buf);
	buf[0] = 1;
	struct i2c_msg short_block[] = { { 0x20, I2C_M_RD | I2C_M_RECV_LEN, 32, buf } };
	report("rdwr-recv-len-short", rdwr(short_block, 1), buf, 0);
	unsigned char reg10[] = { 0x10 };
	struct i2c_msg block[] = { { 0x20, 0, 1, reg10 }, { 0x20, I2C_M_RD | I2C_M_RECV_LEN, 33, buf } };
	report("rdwr-recv-len", rdwr(block, 2), buf, 4);
	struct i2c_msg nack[] = { { 0x51, 0, 1, at0 } };
	report("rdwr-nack", rdwr(nack, 1), buf, 0);

	/* I2C_SLAVE: 7-bit unless TENBIT; an address a driver holds is busy unless forced. */
	report("slave-0x80", ioctl(fd, I2C_SLAVE, 0x80), buf, 0);
	report("slave-busy", ioctl(fd, I2C_SLAVE, 0x21), buf, 0);
	report("slave-force", ioctl(fd, I2C_SLAVE_FORCE, 0x21), buf, 0);
	report("tenbit", ioctl(fd, I2C_TENBIT, 1), buf, 0);
	report("slave-0x400", ioctl(fd, I2C_SLAVE, 0x400), buf, 0);
	report("slave-0x3a5", ioctl(fd, I2C_SLAVE, 0x3a5), buf, 0);
	memset(buf, 0, sizeof buf);
	report("read-tenbit", read(fd, buf, 2), buf, 2);
	report("tenbit-off", ioctl(fd, I2C_TENBIT, 0), buf, 0);
	report("retries-big", ioctl(fd, I2C_RETRIES, 0x80000000UL), buf, 0);
	report("retries", ioctl(fd, I2C_RETRIES, 3), buf, 0);
	report("timeout-big", ioctl(fd, I2C_TIMEOUT, 214748365UL), buf, 0);
	report("timeout", ioctl(fd, I2C_TIMEOUT, 200), buf, 0);
	report("unknown", ioctl(fd, 0x0799, 0), buf, 0);

	/* read() and write() to the file's address. */
	report("slave-eeprom", ioctl(fd, I2C_SLAVE, 0x50), buf, 0);
	unsigned char page_write[] = { 0x10, 0x01, 0x02, 0x03 };
	report("write", write(fd, page_write, sizeof page_write), buf, 0);
	report("write-address", write(fd, "\x10", 1), buf, 0);
	memset(buf, 0, sizeof buf);
	report("read", read(fd, buf, 3), buf, 3);

	/* I2C_SMBUS. */
	union i2c_smbus_data data;
	memset(&data, 0, sizeof data);
	report("smbus-byte-data", smbus(I2C_SMBUS_READ, 0x11, I2C_SMBUS_BYTE_DATA, &data), data.block, 1);
	report("smbus-null-arg", ioctl(fd, I2C_SMBUS, NULL), buf, 0);
	report("smbus-bad-read-data", smbus(I2C_SMBUS_READ, 0x11, I2C_SMBUS_BYTE_DATA, wild), buf, 0);
	report("smbus-bad-write-data", smbus(I2C_SMBUS_WRITE, 0x11, I2C_SMBUS_BYTE_DATA, wild), buf, 0);
	report("smbus-null-data", smbus(I2C_SMBUS_READ, 0x11, I2C_SMBUS_BYTE_DATA, NULL), buf, 0);
	report("smbus-size-9", smbus(I2C_SMBUS_READ, 0x11, 9, &data), buf, 0);
	report("smbus-rw-2", smbus(2, 0x11, I2C_SMBUS_BYTE_DATA, &data), buf, 0);
	data.block[0] = 33;
	report("smbus-block-33", smbus(I2C_SMBUS_READ, 0, I2C_SMBUS_I2C_BLOCK_DATA, &data), buf, 0);
	/* The old I2C block size reads a whole 32-byte block. */
	memset(&data, 0, sizeof data);
	report("smbus-block-broken", smbus(I2C_SMBUS_READ, 0x10, I2C_SMBUS_I2C_BLOCK_BROKEN, &data), data.block, 5);
	report("slave-empty", ioctl(fd, I2C_SLAVE, 0x51), buf, 0);
	report("smbus-quick-empty", smbus(I2C_SMBUS_WRITE, 0, I2C_SMBUS_QUICK, NULL), buf, 0);

	memset(buf, 0, sizeof buf);
	report("rdwr-good-again", rdwr(good, 2), buf, 4);
	return 0;
}
