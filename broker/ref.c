/*
 * ref.c: sealed references (see ref.h). OpenSSL EVP AES-256-GCM with a
 * random 96-bit nonce per reference; sub-keys for sealing and for the
 * debtor hash are derived from each master key with HMAC-SHA256, so the
 * hash never reveals the sealing key.
 */
#include "ref.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "chakong/status.h"
#include "util.h"

#define MAX_KEYS 8
#define VERSION 1
#define HDR 5		/* version + key id */
#define NONCE 12
#define TAG 16

struct key {
	uint8_t id[4];
	uint8_t enc[32];
	uint8_t mac[32];
	/* the debtor hash's HMAC-SHA256 under mac, its inner and outer
	 * pads absorbed once: one-shot HMAC() fetches and keys a whole
	 * EVP_MAC on every call, several times the cost of the hashing.
	 * Read-only after loading, so any thread may copy from them. */
	EVP_MD_CTX *pad[2];
};

struct ck_refkeys {
	struct key keys[MAX_KEYS];
	size_t n;
	EVP_CIPHER *aes;	/* fetched once: no algorithm lookup per seal */
};

static void
derive(const uint8_t master[32], const char *label, uint8_t out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), master, 32, (const unsigned char *)label,
	    strlen(label), out, &len);
}

/* k->pad[] from k->mac; on failure the pads stay NULL and the hash takes
 * the one-shot way (same result, slower). */
static void
pads_setup(struct key *k)
{
	uint8_t pad[64];

	for (int i = 0; i < 2; i++) {
		memset(pad, i == 0 ? 0x36 : 0x5c, sizeof(pad));
		for (size_t b = 0; b < sizeof(k->mac); b++)
			pad[b] ^= k->mac[b];
		k->pad[i] = EVP_MD_CTX_new();
		if (k->pad[i] == NULL ||
		    EVP_DigestInit_ex(k->pad[i], EVP_sha256(), NULL) != 1 ||
		    EVP_DigestUpdate(k->pad[i], pad, sizeof(pad)) != 1) {
			EVP_MD_CTX_free(k->pad[0]);
			EVP_MD_CTX_free(k->pad[1]);
			k->pad[0] = k->pad[1] = NULL;
			break;
		}
	}
	OPENSSL_cleanse(pad, sizeof(pad));
}

int
ck_refkeys_load(const char *path, struct ck_refkeys **out, char *err,
    size_t errlen)
{
	struct ck_refkeys *k;
	struct stat st;
	char line[256];
	unsigned lineno = 0;
	FILE *fp;

	*out = NULL;
	fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fileno(fp), &st) == 0 &&
	    (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "%s: readable by group or others (mode "
		    "%03o); chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		fclose(fp);
		return CK_ECONFIG;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		fclose(fp);
		return CK_ENOMEM;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		uint8_t master[32], digest[32];
		size_t len = strcspn(line, "\r\n");
		unsigned int dlen = 32;

		lineno++;
		line[len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (len != 64 || k->n == MAX_KEYS)
			goto bad;
		for (size_t i = 0; i < 32; i++) {
			int hi = ck_hexval(line[2 * i]);
			int lo = ck_hexval(line[2 * i + 1]);

			if (hi < 0 || lo < 0)
				goto bad;
			master[i] = (uint8_t)(hi << 4 | lo);
		}
		derive(master, "chakong ref seal v1", k->keys[k->n].enc);
		derive(master, "chakong debtor hash v1", k->keys[k->n].mac);
		pads_setup(&k->keys[k->n]);
		HMAC(EVP_sha256(), master, 32, (const unsigned char *)"id", 2,
		    digest, &dlen);
		memcpy(k->keys[k->n].id, digest, 4);
		OPENSSL_cleanse(master, sizeof(master));
		OPENSSL_cleanse(line, sizeof(line));
		k->n++;
	}
	fclose(fp);
	k->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (k->aes == NULL) {
		snprintf(err, errlen, "%s: AES-256-GCM is not available", path);
		ck_refkeys_free(k);
		return CK_ETLS;
	}
	if (k->n == 0) {
		snprintf(err, errlen, "%s: no key (expected lines of 64 hex "
		    "digits; make one with `openssl rand -hex 32`)", path);
		ck_refkeys_free(k);
		return CK_ECONFIG;
	}
	*out = k;
	return 0;
bad:
	OPENSSL_cleanse(line, sizeof(line));
	fclose(fp);
	snprintf(err, errlen, "%s:%u: expected 64 hex digits (at most %d "
	    "keys)", path, lineno, MAX_KEYS);
	ck_refkeys_free(k);
	return CK_ECONFIG;
}

void
ck_refkeys_free(struct ck_refkeys *keys)
{
	if (keys == NULL)
		return;
	EVP_CIPHER_free(keys->aes);
	for (size_t i = 0; i < MAX_KEYS; i++) {
		/* (the digest's free wipes the absorbed pads) */
		EVP_MD_CTX_free(keys->keys[i].pad[0]);
		EVP_MD_CTX_free(keys->keys[i].pad[1]);
	}
	OPENSSL_cleanse(keys, sizeof(*keys));
	free(keys);
}

size_t
ck_refkeys_count(const struct ck_refkeys *keys)
{
	return keys->n;
}

void
ck_ref_debtor_hash(const struct ck_refkeys *keys, unsigned key_index,
    const char *id, uint8_t out[16])
{
	const struct key *k;
	uint8_t inner[32], full[32];
	unsigned int len = 32;
	EVP_MD_CTX *w;

	if (key_index >= keys->n)
		key_index = 0;
	k = &keys->keys[key_index];
	/* a work context per call: the keys are shared between threads */
	w = k->pad[0] != NULL ? EVP_MD_CTX_new() : NULL;
	if (w == NULL ||
	    EVP_MD_CTX_copy_ex(w, k->pad[0]) != 1 ||
	    EVP_DigestUpdate(w, id, strlen(id)) != 1 ||
	    EVP_DigestFinal_ex(w, inner, NULL) != 1 ||
	    EVP_MD_CTX_copy_ex(w, k->pad[1]) != 1 ||
	    EVP_DigestUpdate(w, inner, sizeof(inner)) != 1 ||
	    EVP_DigestFinal_ex(w, full, NULL) != 1)
		HMAC(EVP_sha256(), k->mac, 32, (const unsigned char *)id,
		    strlen(id), full, &len);
	EVP_MD_CTX_free(w);
	OPENSSL_cleanse(inner, sizeof(inner));
	memcpy(out, full, 16);
}

/* ---- plaintext encoding ----------------------------------------------- */

static bool
put_str(uint8_t *buf, size_t *off, size_t max, const char *s)
{
	size_t n = strlen(s);

	if (n > 255 || *off + 1 + n > max)
		return false;
	buf[(*off)++] = (uint8_t)n;
	memcpy(buf + *off, s, n);
	*off += n;
	return true;
}

static bool
get_str(const uint8_t *buf, size_t *off, size_t len, char *dst, size_t dstlen)
{
	size_t n;

	if (*off >= len)
		return false;
	n = buf[(*off)++];
	if (*off + n > len || n >= dstlen || memchr(buf + *off, 0, n) != NULL)
		return false;
	memcpy(dst, buf + *off, n);
	dst[n] = '\0';
	*off += n;
	return true;
}

static size_t
encode(const struct ck_ref *r, uint8_t *buf, size_t max)
{
	size_t off = 0;
	uint64_t t = (uint64_t)r->issued_at;

	if (max < 26)
		return 0;
	buf[off++] = r->type;
	buf[off++] = r->category;
	for (int i = 7; i >= 0; i--)
		buf[off++] = (uint8_t)(t >> (8 * i));
	memcpy(buf + off, r->debtor, 16);
	off += 16;
	if (!put_str(buf, &off, max, r->source) ||
	    !put_str(buf, &off, max, r->asset_id) ||
	    !put_str(buf, &off, max, r->encumbrance_id) ||
	    !put_str(buf, &off, max, r->case_number) ||
	    !put_str(buf, &off, max, r->court_id))
		return 0;
	return off;
}

static bool
decode(const uint8_t *buf, size_t len, struct ck_ref *r)
{
	size_t off = 0;
	uint64_t t = 0;

	memset(r, 0, sizeof(*r));
	if (len < 26)
		return false;
	r->type = buf[off++];
	r->category = buf[off++];
	for (int i = 0; i < 8; i++)
		t = t << 8 | buf[off++];
	r->issued_at = (int64_t)t;
	memcpy(r->debtor, buf + off, 16);
	off += 16;
	return get_str(buf, &off, len, r->source, sizeof(r->source)) &&
	    get_str(buf, &off, len, r->asset_id, sizeof(r->asset_id)) &&
	    get_str(buf, &off, len, r->encumbrance_id,
	    sizeof(r->encumbrance_id)) &&
	    get_str(buf, &off, len, r->case_number, sizeof(r->case_number)) &&
	    get_str(buf, &off, len, r->court_id, sizeof(r->court_id)) &&
	    off == len;
}

/* ---- AEAD ------------------------------------------------------------- */

/*
 * The sealed box both references and journal payloads use: version |
 * key id | nonce | AES-256-GCM(plain) | tag, the first five bytes (and a
 * domain byte, so a reference can never be opened as a payload) as
 * associated data.
 */
static int
seal(const struct ck_refkeys *keys, uint8_t domain, const uint8_t *plain,
    size_t plen, uint8_t *out, size_t outmax, size_t *outlen)
{
	const struct key *k = &keys->keys[0];
	uint8_t aad[HDR + 1];
	EVP_CIPHER_CTX *ctx;
	int n, rc = CK_EINVAL;

	if (plen > (size_t)INT32_MAX || outmax < HDR + NONCE + plen + TAG)
		return CK_EINVAL;
	out[0] = VERSION;
	memcpy(out + 1, k->id, 4);
	memcpy(aad, out, HDR);
	aad[HDR] = domain;
	if (RAND_bytes(out + HDR, NONCE) != 1)
		return CK_EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return CK_ENOMEM;
	if (EVP_EncryptInit_ex(ctx, keys->aes, NULL, k->enc,
	    out + HDR) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof(aad)) != 1 ||
	    EVP_EncryptUpdate(ctx, out + HDR + NONCE, &n, plain,
	    (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(ctx, out + HDR + NONCE + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG,
	    out + HDR + NONCE + plen) != 1)
		goto done;
	*outlen = HDR + NONCE + plen + TAG;
	rc = 0;
done:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

/* Open a sealed box into plain (at least len - 33 bytes); the plain
 * length and which key opened it come back. */
static int
open_box(const struct ck_refkeys *keys, uint8_t domain, const uint8_t *in,
    size_t len, uint8_t *plain, size_t *plen, unsigned *key_index)
{
	const struct key *k = NULL;
	uint8_t aad[HDR + 1];
	EVP_CIPHER_CTX *ctx;
	unsigned idx;
	size_t clen;
	int n, rc = CK_EINVAL;

	if (len < HDR + NONCE + TAG || len - HDR - NONCE - TAG > INT32_MAX ||
	    in[0] != VERSION)
		return CK_EINVAL;
	for (idx = 0; idx < keys->n; idx++) {
		if (memcmp(keys->keys[idx].id, in + 1, 4) == 0) {
			k = &keys->keys[idx];
			break;
		}
	}
	if (k == NULL)
		return CK_EINVAL;
	memcpy(aad, in, HDR);
	aad[HDR] = domain;
	clen = len - HDR - NONCE - TAG;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return CK_ENOMEM;
	if (EVP_DecryptInit_ex(ctx, keys->aes, NULL, k->enc,
	    in + HDR) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, sizeof(aad)) != 1 ||
	    EVP_DecryptUpdate(ctx, plain, &n, in + HDR + NONCE,
	    (int)clen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG,
	    (void *)(in + len - TAG)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, plain + n, &n) != 1)
		goto done;
	*plen = clen;
	*key_index = idx;
	rc = 0;
done:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

#define DOMAIN_REF 1
#define DOMAIN_BOX 2

int
ck_ref_seal(const struct ck_refkeys *keys, const struct ck_ref *ref,
    uint8_t *out, size_t *outlen)
{
	uint8_t plain[CK_REF_MAX_LEN];
	size_t plen = encode(ref, plain, CK_REF_MAX_LEN - HDR - NONCE - TAG);
	int rc;

	if (plen == 0)
		return CK_EINVAL;
	rc = seal(keys, DOMAIN_REF, plain, plen, out, CK_REF_MAX_LEN, outlen);
	OPENSSL_cleanse(plain, sizeof(plain));
	return rc;
}

int
ck_ref_open(const struct ck_refkeys *keys, const uint8_t *in, size_t len,
    struct ck_ref *out)
{
	uint8_t plain[CK_REF_MAX_LEN];
	size_t plen;
	unsigned idx;
	int rc = CK_EINVAL;

	if (len > CK_REF_MAX_LEN)
		return CK_EINVAL;
	if (open_box(keys, DOMAIN_REF, in, len, plain, &plen, &idx) == 0 &&
	    decode(plain, plen, out)) {
		out->key_index = idx;
		rc = 0;
	}
	OPENSSL_cleanse(plain, sizeof(plain));
	return rc;
}

int
ck_box_seal(const struct ck_refkeys *keys, const uint8_t *plain, size_t len,
    uint8_t *out, size_t outmax, size_t *outlen)
{
	return seal(keys, DOMAIN_BOX, plain, len, out, outmax, outlen);
}

int
ck_box_open(const struct ck_refkeys *keys, const uint8_t *in, size_t len,
    uint8_t *plain, size_t *plen)
{
	unsigned idx;

	return open_box(keys, DOMAIN_BOX, in, len, plain, plen, &idx);
}

int
ck_ref_check(const struct ck_refkeys *keys, const struct ck_ref *ref,
    uint8_t type, const char *debtor_id, const char *court_id, int64_t now,
    const char **why)
{
	uint8_t h[16];

	if (ref->type != type) {
		*why = type == CK_REF_ASSET ? "not an asset reference" :
		    "not a freeze reference";
		return CK_EINVAL;
	}
	ck_ref_debtor_hash(keys, ref->key_index, debtor_id, h);
	if (CRYPTO_memcmp(h, ref->debtor, sizeof(h)) != 0) {
		*why = "issued for another debtor";
		return CK_EINVAL;
	}
	if (strcmp(ref->court_id, court_id) != 0) {
		*why = "issued to another court";
		return CK_EINVAL;
	}
	if (now - ref->issued_at > CK_REF_MAX_AGE_S ||
	    ref->issued_at > now + 300) {
		*why = "older than 30 days (query again for a fresh one)";
		return CK_EINVAL;
	}
	return 0;
}
