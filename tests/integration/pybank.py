"""pybank: a bank played by a small Python grpcio server instead of
tests/agencysim, so that a bug shared by the broker's client and server
code (agencysim reuses the broker's gRPC server) cannot hide.

It serves chakong.agency.v1.Bank/QueryAccounts over mutual TLS (its
certificate from tests/pki/mkpki DIR agency pybank; a client certificate
from the CA required; only role broker served) with canned accounts, and
records every request and the caller's identity and deadline.
"""

import threading
from concurrent import futures

import grpc

BANK_CODE = "999"
BANK_NAME = "派森测试银行"
REFUSE_ID = "513101198201130014"      # answered FAILED_PRECONDITION
REFUSE_MESSAGE = "pybank refuses this subject"


def canned_accounts(bank_pb2, common_pb2):
    """The accounts pybank holds for 张三 (11010519491231002X)."""
    A, E = bank_pb2.Account, common_pb2.Encumbrance
    return [
        A(account_no="6259990000000012345", account_type="demand",
          currency="CNY", balance_fen=987654321, available_fen=987604321,
          frozen_fen=50000, branch="派森分行营业部",
          encumbrances=[
              E(encumbrance_id="PYF-1",
                kind=common_pb2.ENCUMBRANCE_FREEZE, court_id="440300",
                case_number="(2020)粤03执9号", frozen_fen=50000,
                queued_fen=0, requested_fen=50000,
                effective_date="2024-01-02", expiry_date="2025-01-01",
                queue_position=0, duration_days=365),
              E(encumbrance_id="PYF-2",
                kind=common_pb2.ENCUMBRANCE_FREEZE, court_id="440100",
                case_number="(2021)粤01执77号", frozen_fen=0,
                queued_fen=30000, requested_fen=30000, effective_date="",
                expiry_date="", queue_position=1, duration_days=180),
          ]),
        A(account_no="6259990000000067890", account_type="time",
          currency="HKD", balance_fen=1200, available_fen=1200,
          frozen_fen=0, branch="派森分行香港路支行"),
        # no currency: read as CNY
        A(account_no="62599900000000111", account_type="demand",
          currency="", balance_fen=0, available_fen=0, frozen_fen=0,
          branch=""),
    ]


def peer_uris(context):
    """The SAN URIs of the caller's certificate."""
    from cryptography import x509
    pems = context.auth_context().get("x509_pem_cert") or []
    out = []
    for pem in pems:
        cert = x509.load_pem_x509_certificate(pem)
        try:
            san = cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            continue
        out += san.get_values_for_type(x509.UniformResourceIdentifier)
    return out


class PyBank:
    def __init__(self, apb, key_pem, cert_pem, ca_pem, holder_id):
        self.apb = apb
        self.holder_id = holder_id
        self.lock = threading.Lock()
        self.requests = []        # (QueryAccountsRequest, uris, remaining)
        bank = apb.bank
        handler = grpc.method_handlers_generic_handler(
            "chakong.agency.v1.Bank", {
                "QueryAccounts": grpc.unary_unary_rpc_method_handler(
                    self.query_accounts,
                    request_deserializer=bank.QueryAccountsRequest.FromString,
                    response_serializer=lambda m: m.SerializeToString()),
            })
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        creds = grpc.ssl_server_credentials(
            [(key_pem, cert_pem)], root_certificates=ca_pem,
            require_client_auth=True)
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        assert self.port, "pybank could not bind"

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop(grace=0).wait(5)

    def query_accounts(self, req, context):
        uris = peer_uris(context)
        with self.lock:
            self.requests.append((req, uris, context.time_remaining()))
        if not any(u.startswith("urn:chakong:broker:") for u in uris):
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          "only role broker may ask a bank")
        bank = self.apb.bank
        which = req.subject.WhichOneof("id")
        sid = getattr(req.subject, which) if which else ""
        if sid == REFUSE_ID:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          REFUSE_MESSAGE)
        if sid != self.holder_id:
            return bank.QueryAccountsReply(found=False, bank_code=BANK_CODE,
                                           bank_name=BANK_NAME)
        return bank.QueryAccountsReply(
            found=True, bank_code=BANK_CODE, bank_name=BANK_NAME,
            accounts=canned_accounts(bank, self.apb.common))
