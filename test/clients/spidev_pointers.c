/*
 * spidev_pointers PATH: SPI_IOC_MESSAGE with good and bad tx_buf/rx_buf
 * pointers and sizes, on a loopback (MISO = MOSI). One line per case:
 * "NAME ok RESULT RX" or "NAME errno ERRNAME RX", RX being what the
 * receive buffer holds afterwards (hex), so partial copies show.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/spi/spidev.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int fd;

static void report(const char *name, int r, const unsigned char *rx, size_t n) {
	if (r < 0) printf("%s errno %s ", name, strerrorname_np(errno));
	else printf("%s ok %d ", name, r);
	for (size_t i = 0; i < n; i++) printf("%02x", rx[i]);
	printf("\n");
	fflush(stdout);
}

static struct spi_ioc_transfer xfer(const void *tx, void *rx, uint32_t len) {
	struct spi_ioc_transfer t;
	memset(&t, 0, sizeof t);
	t.tx_buf = (uintptr_t)tx;
	t.rx_buf = (uintptr_t)rx;
	t.len = len;
	return t;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	fd = open(argv[1], O_RDWR);
	if (fd < 0) { printf("open errno %s\n", strerrorname_np(errno)); return 1; }
	long page = sysconf(_SC_PAGESIZE);
	unsigned char rx[16], rx2[16];
	struct spi_ioc_transfer t[2];

	memset(rx, 0, sizeof rx);
	t[0] = xfer("ping", rx, 4);
	report("good", ioctl(fd, SPI_IOC_MESSAGE(1), t), rx, 4);

	/* The array itself is unreadable: the kernel's copy-in fails before the device sees it. */
	report("bad-array", ioctl(fd, SPI_IOC_MESSAGE(1), (void *)16), rx, 0);

	/* A bad tx_buf: nothing goes on the wire, nothing comes back. */
	memset(rx, 0, sizeof rx);
	t[0] = xfer((void *)16, rx, 4);
	report("bad-tx", ioctl(fd, SPI_IOC_MESSAGE(1), t), rx, 4);

	/* A bad tx_buf in the second transfer fails the whole message: the first's rx stays empty. */
	memset(rx, 0, sizeof rx);
	t[0] = xfer("abcd", rx, 4);
	t[1] = xfer((void *)16, rx2, 4);
	report("bad-tx-second", ioctl(fd, SPI_IOC_MESSAGE(2), t), rx, 4);

	/* A bad rx_buf is found after the transfer: the first transfer's rx was copied out. */
	memset(rx, 0, sizeof rx);
	t[0] = xfer("wxyz", rx, 4);
	t[1] = xfer("1234", (void *)16, 4);
	report("bad-rx-second", ioctl(fd, SPI_IOC_MESSAGE(2), t), rx, 4);

	/* An rx buffer running into a PROT_NONE page: copy_to_user() leaves the accessible part. */
	unsigned char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(two + page, page, PROT_NONE);
	memset(two + page - 4, '.', 4);
	t[0] = xfer("ABCDEFGH", two + page - 4, 8);
	report("straddle-rx", ioctl(fd, SPI_IOC_MESSAGE(1), t), two + page - 4, 4);

	/* A size that is not a whole number of transfers, and no transfer at all. */
	report("bad-size", ioctl(fd, _IOW(SPI_IOC_MAGIC, 0, char[33]), t), rx, 0);
	report("empty", ioctl(fd, SPI_IOC_MESSAGE(0), t), rx, 0);

	memset(rx, 0, sizeof rx);
	t[0] = xfer("pong", rx, 4);
	report("good-again", ioctl(fd, SPI_IOC_MESSAGE(1), t), rx, 4);
	return 0;
}
