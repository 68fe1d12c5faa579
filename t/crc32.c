/* crc32.c: test helper: print the zlib CRC32 of stdin (or of FILE) in hex.
 * The bats tests use it to re-seal diff streams they patch on purpose. */
#include <stdio.h>
#include <zlib.h>

int main(int argc, char **argv)
{
	FILE *f = stdin;
	unsigned char buf[65536];
	size_t n;
	uLong crc = crc32(0L, Z_NULL, 0);
	if (argc > 2) {
		fprintf(stderr, "usage: crc32 [FILE]\n");
		return 2;
	}
	if (argc == 2 && !(f = fopen(argv[1], "rb"))) {
		perror(argv[1]);
		return 2;
	}
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		crc = crc32(crc, buf, (uInt)n);
	if (ferror(f)) {
		perror(argc == 2 ? argv[1] : "(stdin)");
		return 2;
	}
	if (f != stdin)
		fclose(f);
	printf("%08lx\n", crc);
	return 0;
}
