"""A local SOAP service (document/literal) that pages its orders and misbehaves on purpose.

``GetOrders(page, pageSize)`` returns ``Orders/Order*`` (Id, Customer, Total, Placed, Address/City)
and a ``Total``. Faults are queued per page like the REST test server: ``500``, ``429``, ``slow``,
``drop``, ``malformed`` (truncated XML), ``fault`` (a SOAP Fault).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NS = "http://example.com/orders"

WSDL = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NS}" targetNamespace="{NS}" name="Orders">
  <types>
    <xs:schema targetNamespace="{NS}" elementFormDefault="qualified">
      <xs:element name="GetOrders">
        <xs:complexType><xs:sequence>
          <xs:element name="page" type="xs:int"/>
          <xs:element name="pageSize" type="xs:int"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:complexType name="Address"><xs:sequence>
        <xs:element name="City" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="Order"><xs:sequence>
        <xs:element name="Id" type="xs:int"/>
        <xs:element name="Customer" type="xs:string"/>
        <xs:element name="Total" type="xs:decimal"/>
        <xs:element name="Placed" type="xs:dateTime"/>
        <xs:element name="Address" type="tns:Address"/>
      </xs:sequence></xs:complexType>
      <xs:element name="GetOrdersResponse">
        <xs:complexType><xs:sequence>
          <xs:element name="Orders"><xs:complexType><xs:sequence>
            <xs:element name="Order" type="tns:Order" minOccurs="0" maxOccurs="unbounded"/>
          </xs:sequence></xs:complexType></xs:element>
          <xs:element name="Total" type="xs:int"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:schema>
  </types>
  <message name="GetOrdersIn"><part name="parameters" element="tns:GetOrders"/></message>
  <message name="GetOrdersOut"><part name="parameters" element="tns:GetOrdersResponse"/></message>
  <portType name="OrdersPort">
    <operation name="GetOrders">
      <input message="tns:GetOrdersIn"/><output message="tns:GetOrdersOut"/>
    </operation>
  </portType>
  <binding name="OrdersBinding" type="tns:OrdersPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="GetOrders">
      <soap:operation soapAction="{NS}/GetOrders"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="OrdersService">
    <port name="OrdersPort" binding="tns:OrdersBinding"><soap:address location="ADDRESS"/></port>
  </service>
</definitions>
"""


class SoapServer:
    """The service on 127.0.0.1 (a free port), with ``n`` orders."""

    def __init__(self, n: int = 45) -> None:
        self.n = n
        self.faults: dict[int, list[str]] = defaultdict(list)
        self.calls: list[int] = []
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/orders"

    def wsdl(self) -> str:
        return WSDL.replace("ADDRESS", self.url)

    def fault(self, page: int, *kinds: str) -> None:
        with self.lock:
            self.faults[page].extend(kinds)

    def start(self) -> SoapServer:
        api = self

        class Handler(_Handler):
            server_api = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_api: SoapServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._send(200, self.server_api.wsdl().encode(), "text/xml")

    def do_POST(self) -> None:
        api = self.server_api
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        page = int(re.search(r"page>(\d+)<", body).group(1))
        size = int(re.search(r"pageSize>(\d+)<", body).group(1))
        api.calls.append(page)
        with api.lock:
            fault = api.faults[page].pop(0) if api.faults.get(page) else None
        if fault == "500":
            return self._send(500, b"<html>server error</html>", "text/html")
        if fault == "429":
            return self._send(429, b"", "text/plain", {"Retry-After": "0.1"})
        if fault == "slow":
            time.sleep(1.5)
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if fault == "fault":
            xml = ('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
                   "<soap:Body><soap:Fault><faultcode>soap:Client</faultcode>"
                   "<faultstring>page out of range</faultstring></soap:Fault></soap:Body>"
                   "</soap:Envelope>")
            return self._send(200, xml.encode(), "text/xml")
        first = (page - 1) * size + 1
        ids = [i for i in range(first, first + size) if i <= api.n]
        orders = "".join(
            f"<Order><Id>{i}</Id><Customer>c&amp;{i % 4}</Customer><Total>{i}.50</Total>"
            f"<Placed>2026-01-01T10:{i % 60:02d}:00Z</Placed><Address><City>City {i % 3}</City>"
            f"</Address></Order>" for i in ids)
        xml = (f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
               f'<soap:Body><GetOrdersResponse xmlns="{NS}"><Orders>{orders}</Orders>'
               f"<Total>{api.n}</Total></GetOrdersResponse></soap:Body></soap:Envelope>")
        raw = xml.encode()
        if fault == "malformed":
            raw = raw[: len(raw) // 2]
        return self._send(200, raw, "text/xml")

    def _send(self, status: int, raw: bytes, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(raw)
