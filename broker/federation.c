/*
 * federation.c: the receiving side of a partner broker's forwarded Query
 * (see federation.h). Adapters/peer is the sending side.
 */
#include "federation.h"

#include <stdio.h>
#include <string.h>

#include "chakong/adapter.h"
#include "chakong/grpc_status.h"
#include "check.h"
#include "config.h"
#include "policy.h"
#include "tls.h"

static const struct ck_config *current;

void
ck_fed_set_config(const struct ck_config *cfg)
{
	current = cfg;
}

/* The categories a Query asks, as a mask (empty = all). Values that are
 * no category are left to the validation that follows. */
static uint32_t
asked(const Chakong__V1__QueryRequest *req)
{
	return req->n_categories == 0 ? CK_CATEGORY_ALL :
	    ck_category_mask((const int *)req->categories, req->n_categories);
}

/*
 * A forwarded call gets the intersection of two grants here: what
 * [peer.<id>] lets that partner forward (courts, categories), and what the
 * access policy in force gives the originating court itself
 * ([policy.court:<id>]: the method, the categories, its roster). So the
 * partner applies its own policy to the on-behalf fields; no identity gets
 * more by being forwarded.
 */
int
ck_fed_allow(const struct ck_config *cfg, const char *peer_id,
    const char *court_id, const char *officer_id, const char *method,
    uint32_t categories, char *msg, size_t msglen)
{
	struct ck_policy_subject s = {
		.role = CK_ROLE_COURT,
		.id = court_id,
		.method = method,
		.officer_id = officer_id,
		.case_court = court_id,
		.categories = categories,
	};
	const struct ck_peer_conf *pc = ck_config_peer_by_id(cfg, peer_id);
	bool court = false;

	if (pc == NULL) {
		snprintf(msg, msglen, "on_behalf: broker %s is not configured "
		    "as a peer here", peer_id);
		return CK_GRPC_PERMISSION_DENIED;
	}
	if (strcmp(method, "Query") != 0) {
		snprintf(msg, msglen, "on_behalf: peer %s may not forward %s",
		    peer_id, method);
		return CK_GRPC_PERMISSION_DENIED;
	}
	for (size_t i = 0; i < pc->ncourts; i++)
		if (strcmp(pc->courts[i], court_id) == 0)
			court = true;
	if (!court) {
		snprintf(msg, msglen, "on_behalf.court_id: peer %s may not act "
		    "for this court here", peer_id);
		return CK_GRPC_PERMISSION_DENIED;
	}
	for (int c = CK_CATEGORY_DEPOSIT; c <= CK_CATEGORY_ENTERPRISE; c++) {
		if ((categories & CK_CATEGORY_BIT(c)) &&
		    !(pc->categories & CK_CATEGORY_BIT(c))) {
			snprintf(msg, msglen, "categories: peer %s has no right "
			    "to Query %s for court %s here", peer_id,
			    ck_category_name(c), court_id);
			return CK_GRPC_PERMISSION_DENIED;
		}
	}
	return ck_policy_check(cfg->policy, &s, msg, msglen) == 0 ?
	    CK_GRPC_OK : CK_GRPC_PERMISSION_DENIED;
}

bool
ck_fed_is_peer(const struct ck_call *call)
{
	return call->peer->role == CK_ROLE_BROKER &&
	    ck_config_peer_by_id(current != NULL ? current : call->cfg,
	    call->peer->id) != NULL;
}

int
ck_fed_query_rights(const struct ck_call *call,
    const Chakong__V1__QueryRequest *req, bool *forwarded, char *msg,
    size_t msglen)
{
	const Chakong__V1__OnBehalf *ob = req->on_behalf;

	*forwarded = false;
	if (call->peer->role != CK_ROLE_BROKER) {
		if (ob == NULL)
			return CK_GRPC_OK;
		snprintf(msg, msglen, "on_behalf: accepted only from a partner "
		    "broker configured as a peer; a court acts for itself");
		return CK_GRPC_PERMISSION_DENIED;
	}
	if (ob == NULL) {
		snprintf(msg, msglen, "on_behalf: required from a broker (it "
		    "acts only on a court's behalf)");
		return CK_GRPC_PERMISSION_DENIED;
	}
	*forwarded = true;
	return ck_fed_allow(current != NULL ? current : call->cfg,
	    call->peer->id, ob->court_id, ob->officer_id, "Query",
	    asked(req), msg, msglen);
}

bool
ck_fed_source_is_partner(const char *source)
{
	return strchr(source, '/') != NULL;
}

static bool
valid_broker_id(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int
ck_fed_query_accept(const struct ck_call *call,
    const Chakong__V1__QueryRequest *req, const struct ck_case *kase,
    const char *case_court, struct ck_fanout_query *fq, char *msg,
    size_t msglen)
{
	const Chakong__V1__OnBehalf *ob = req->on_behalf;
	Chakong__V1__CaseRef c = CHAKONG__V1__CASE_REF__INIT;
	struct ck_check chk;
	struct ck_case obcase;
	const char *obcourt;

	ck_check_init(&chk, call->cfg);
	c.case_number = ob->case_number;
	c.officer_id = ob->officer_id;
	if (!ck_check_case(&chk, "on_behalf", &c, &obcase, &obcourt)) {
		snprintf(msg, msglen, "%s", chk.msg);
		return CK_GRPC_INVALID_ARGUMENT;
	}
	if (strcmp(obcase.norm, kase->norm) != 0) {
		snprintf(msg, msglen, "on_behalf.case_number: must equal "
		    "case.case_number");
		return CK_GRPC_INVALID_ARGUMENT;
	}
	if (strcmp(ob->officer_id, req->case_->officer_id) != 0) {
		snprintf(msg, msglen, "on_behalf.officer_id: must equal "
		    "case.officer_id");
		return CK_GRPC_INVALID_ARGUMENT;
	}
	if (case_court == NULL || strcmp(case_court, ob->court_id) != 0) {
		snprintf(msg, msglen, "case.case_number: the originating court "
		    "may act only on its own cases");
		return CK_GRPC_PERMISSION_DENIED;
	}
	if (ob->n_via == 0) {
		snprintf(msg, msglen, "on_behalf.via: required (the brokers "
		    "passed, the sending broker last)");
		return CK_GRPC_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < ob->n_via; i++) {
		if (!valid_broker_id(ob->via[i])) {
			snprintf(msg, msglen, "on_behalf.via: each entry must "
			    "be a broker id, 1..31 of [A-Za-z0-9._-]");
			return CK_GRPC_INVALID_ARGUMENT;
		}
	}
	if (strcmp(ob->via[ob->n_via - 1], call->peer->id) != 0) {
		snprintf(msg, msglen, "on_behalf.via: must end with the sending "
		    "broker's own id");
		return CK_GRPC_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < ob->n_via; i++) {
		if (strcmp(ob->via[i], call->cfg->broker_id) == 0) {
			snprintf(msg, msglen, "on_behalf.via: the request has "
			    "already passed broker %s (a forwarding loop); not "
			    "answered again", call->cfg->broker_id);
			return CK_GRPC_FAILED_PRECONDITION;
		}
	}
	if (ob->n_via > CK_FED_MAX_HOPS) {
		snprintf(msg, msglen, "on_behalf.via: the request has passed "
		    "%zu brokers; the hop limit is %d", ob->n_via,
		    CK_FED_MAX_HOPS);
		return CK_GRPC_FAILED_PRECONDITION;
	}
	fq->court_id = ob->court_id;
	fq->via = (const char *const *)ob->via;
	fq->nvia = ob->n_via;
	return CK_GRPC_OK;
}
