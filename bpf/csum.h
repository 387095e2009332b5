/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksums (RFC 1071) for the headers the programs write.
 *
 * The programs build the IPv4 headers they emit (the IPIP outer header, the
 * ICMP reply's IPv4 header) in a stack buffer and checksum that buffer with
 * fixed-size unrolled sums; the ICMP quote is summed in place in the packet,
 * word by word, with a bound the verifier can follow. Sums are taken over
 * 16- or 32-bit words exactly as they lie in memory: the ones' complement
 * sum is byte-order independent, so the folded result is stored as is.
 */
#ifndef XDPLB_CSUM_H
#define XDPLB_CSUM_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* The largest IPv4 header (ihl 15) plus the 8 payload bytes an ICMP error
 * quotes, in 32-bit words: the bound of csum_words32. */
#define CSUM_QUOTE_MAX_WORDS ((60 + 8) / 4)

/* csum_fold folds a 64-bit accumulator of 16- or 32-bit words into a 16-bit
 * ones' complement sum and returns its complement: the value to store in a
 * checksum field. Four folds are enough for any 64-bit input. */
static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* csum_ipv4_hdr returns the header checksum of the option-less 20-byte IPv4
 * header at h, whose check field the caller has zeroed. h must be 4-byte
 * aligned memory (a stack buffer). */
static __always_inline __u16 csum_ipv4_hdr(const void *h)
{
	const __u32 *w = h;
	__u64 sum = 0;

#pragma clang loop unroll(full)
	for (int i = 0; i < 5; i++)
		sum += w[i];
	return csum_fold(sum);
}

/* csum_words32 adds n (at most CSUM_QUOTE_MAX_WORDS) 32-bit words starting
 * at the packet pointer start to an unfolded sum and returns it. Words that
 * would cross data_end are not read, so a caller that has not proven
 * start + 4 * n <= data_end gets a wrong sum, never an out-of-bounds read.
 *
 * Verifier: start carries a variable offset (VLAN tag, IP options), so each
 * word is checked against data_end right before it is read; the loop has a
 * constant trip count and is fully unrolled. */
static __always_inline __u64 csum_words32(const void *start, __u32 n,
					  const void *data_end)
{
	__u64 sum = 0;

#pragma clang loop unroll(full)
	for (__u32 i = 0; i < CSUM_QUOTE_MAX_WORDS; i++) {
		const __u32 *w = start + i * 4;

		if (i >= n || (const void *)(w + 1) > data_end)
			break;
		sum += *w;
	}
	return sum;
}

#endif /* XDPLB_CSUM_H */
