/*
 * ref.h: asset_ref and freeze_ref, the opaque, tamper-proof references the
 * broker hands to callers (DESIGN.md). A reference seals, with AES-256-GCM
 * under a key of the broker's own (ref_key in the config), the source, the
 * agency's asset id, the asset kind, a keyed hash of the debtor's id, the
 * court and the time of issue (a freeze_ref also the freeze's id and the
 * case holding it). On use the request's debtor and court must match and
 * the reference must be younger than 30 days; anything forged, altered or
 * foreign is refused.
 *
 * Wire form: version (1) | key id (4) | nonce (12) | ciphertext | tag (16),
 * with the first five bytes as associated data. The key file holds one or
 * more keys (64 hex digits a line); the first seals, all open, so keys can
 * be rotated without breaking references in flight.
 */
#ifndef CK_REF_H
#define CK_REF_H

#include <stddef.h>
#include <stdint.h>

#define CK_REF_ASSET 1
#define CK_REF_FREEZE 2
#define CK_REF_MAX_AGE_S (30 * 86400)
#define CK_REF_MAX_LEN 768

struct ck_ref {
	uint8_t type;			/* CK_REF_ASSET, CK_REF_FREEZE */
	uint8_t category;		/* enum ck_category */
	char source[64];		/* "bank:icbc" */
	char asset_id[256];		/* the agency's id of the asset; a partner
					   broker's asset_ref (adapters/peer) */
	char encumbrance_id[128];	/* freeze refs: the agency's freeze id */
	char case_number[96];		/* freeze refs: the case holding it */
	char court_id[32];
	uint8_t debtor[16];		/* ck_ref_debtor_hash() of the id */
	int64_t issued_at;		/* Unix seconds, broker clock */
	unsigned key_index;		/* set by ck_ref_open: which key */
};

struct ck_refkeys;

/* Read the key file (refused if group or others can read it). */
int ck_refkeys_load(const char *path, struct ck_refkeys **out, char *err,
    size_t errlen);
/* How many keys the file held (key_index runs below this). */
size_t ck_refkeys_count(const struct ck_refkeys *keys);
/* Wipes the keys; NULL-safe. */
void ck_refkeys_free(struct ck_refkeys *keys);

/* Keyed hash of a debtor id under key `key_index` (0 = current). Also used
 * to name a debtor in logs and audit records without the id itself. */
void ck_ref_debtor_hash(const struct ck_refkeys *keys, unsigned key_index,
    const char *id, uint8_t out[16]);

/* Seal ref into out (at most CK_REF_MAX_LEN bytes); 0 or CK_EINVAL. */
int ck_ref_seal(const struct ck_refkeys *keys, const struct ck_ref *ref,
    uint8_t *out, size_t *outlen);
/* Open a sealed reference: 0, or CK_EINVAL for anything not sealed by
 * one of our keys (forged, altered, truncated, foreign). */
int ck_ref_open(const struct ck_refkeys *keys, const uint8_t *in,
    size_t len, struct ck_ref *out);

/*
 * A sealed box for other secrets at rest (the journal's copy of a call it
 * may have to re-send names the debtor): the same keys and AEAD as
 * references, a different domain so neither opens as the other. The box
 * is CK_BOX_OVERHEAD bytes longer than the plain text.
 */
#define CK_BOX_OVERHEAD 33
int ck_box_seal(const struct ck_refkeys *keys, const uint8_t *plain,
    size_t len, uint8_t *out, size_t outmax, size_t *outlen);
/* plain must hold len - CK_BOX_OVERHEAD bytes. 0 or CK_EINVAL. */
int ck_box_open(const struct ck_refkeys *keys, const uint8_t *in, size_t len,
    uint8_t *plain, size_t *plen);

/*
 * Is an opened reference usable here: the right type, the request's
 * debtor and court, and younger than CK_REF_MAX_AGE_S at `now`? Returns
 * 0, or CK_EINVAL with *why set to a rule text (no values).
 */
int ck_ref_check(const struct ck_refkeys *keys, const struct ck_ref *ref,
    uint8_t type, const char *debtor_id, const char *court_id, int64_t now,
    const char **why);

#endif
