/*
 * pcap_floor: the cost of reading a capture file with libpcap and nothing else.
 *
 * The same pcap_open_offline + pcap_next_ex loop the sensor's replay runs, with no
 * parsing or detection: the throughput floor any pcap-based replay is measured against.
 * The loop counts packets and sums caplen (printed) so the compiler cannot drop it.
 *
 *   cc -O2 -o pcap_floor pcap_floor.c -lpcap
 *   ./pcap_floor FILE.pcap
 *   floor: 1000000 packets in 0.123 s (8130081 packets/s); caplen total 123456789 bytes
 *
 * Timing starts after the file is opened (as the sensor's replay timing does).
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
        return 2;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[1], errbuf);
    if (p == NULL) {
        fprintf(stderr, "pcap_floor: %s\n", errbuf);
        return 1;
    }
    uint64_t packets = 0, bytes = 0;
    struct pcap_pkthdr *header;
    const u_char *data;
    int rc;
    double start = now();
    while ((rc = pcap_next_ex(p, &header, &data)) >= 0) {
        if (rc == 0) continue; /* live-capture timeout; never happens offline */
        packets++;
        bytes += header->caplen;
    }
    double seconds = now() - start;
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "pcap_floor: %s\n", pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    printf("floor: %llu packets in %.3f s (%.0f packets/s); caplen total %llu bytes\n",
           (unsigned long long)packets, seconds, seconds > 0 ? (double)packets / seconds : 0.0,
           (unsigned long long)bytes);
    return 0;
}
