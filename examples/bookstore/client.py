#!/usr/bin/python3
"""Calls bookstore.v1.Bookstore through the gateway (or directly at the backend) and prints
what each call returned. Needs Debian's python3-grpcio and python3-protobuf only: the message
classes are built at run time from the descriptor set, no generated code.

  /usr/bin/python3 examples/bookstore/client.py --target=127.0.0.1:9090 \
      --descriptor_set=bazel-bin/examples/bookstore/bookstore_proto.pb

Exits 0 when every call behaved as the example backend promises, 1 otherwise.
"""

import argparse
import sys

import grpc
from google.protobuf import descriptor_pb2, message_factory

TIMEOUT = 10  # seconds per call


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="127.0.0.1:9090")
    parser.add_argument("--descriptor_set", required=True)
    args = parser.parse_args()

    fds = descriptor_pb2.FileDescriptorSet()
    try:
        with open(args.descriptor_set, "rb") as f:
            fds.ParseFromString(f.read())
    except OSError as e:
        parser.error(f"--descriptor_set: cannot read {args.descriptor_set}: {e.strerror} "
                     "(bazel build //examples/bookstore:bookstore_proto.pb makes "
                     "bazel-bin/examples/bookstore/bookstore_proto.pb)")
    m = message_factory.GetMessages(fds.file)
    FieldMask = m["google.protobuf.FieldMask"]
    Empty = m["google.protobuf.Empty"]

    channel = grpc.insecure_channel(args.target)

    def method(name, req, resp, kind="unary_unary"):
        return getattr(channel, kind)(f"/bookstore.v1.Bookstore/{name}",
                                      request_serializer=m[req].SerializeToString,
                                      response_deserializer=m[resp].FromString)

    list_shelves = method("ListShelves", "bookstore.v1.ListShelvesRequest",
                          "bookstore.v1.ListShelvesResponse")
    create_book = method("CreateBook", "bookstore.v1.CreateBookRequest", "bookstore.v1.Book")
    update_book = method("UpdateBook", "bookstore.v1.UpdateBookRequest", "bookstore.v1.Book")
    get_book = method("GetBook", "bookstore.v1.GetBookRequest", "bookstore.v1.Book")
    delete_book = method("DeleteBook", "bookstore.v1.DeleteBookRequest",
                         "google.protobuf.Empty")
    stream_books = method("StreamBooks", "bookstore.v1.StreamBooksRequest",
                          "bookstore.v1.Book", "unary_stream")
    create_books = method("CreateBooks", "bookstore.v1.CreateBooksRequest",
                          "bookstore.v1.CreateBooksResponse", "stream_unary")
    Book = m["bookstore.v1.Book"]

    shelves = list_shelves(m["bookstore.v1.ListShelvesRequest"](), timeout=TIMEOUT).shelves
    print("ListShelves:", ", ".join(f"{s.id} {s.theme!r}" for s in shelves))

    book = create_book(m["bookstore.v1.CreateBookRequest"](
        shelf=1, book=Book(title="Kindred", author="Octavia E. Butler", tags=["classic"])),
        timeout=TIMEOUT)
    print(f"CreateBook: id {book.id} {book.title!r} created {book.create_time.ToJsonString()}")

    book = update_book(m["bookstore.v1.UpdateBookRequest"](
        shelf=1, book=Book(id=book.id, title="Kindred (Graphic Novel)"),
        update_mask=FieldMask(paths=["title"])), timeout=TIMEOUT)
    print(f"UpdateBook: {book.title!r} by {book.author}")

    streamed = [b.title for b in stream_books(m["bookstore.v1.StreamBooksRequest"](shelf=1),
                                              timeout=TIMEOUT)]
    print(f"StreamBooks: {len(streamed)} books: {streamed}")

    reqs = [m["bookstore.v1.CreateBooksRequest"](shelf=2, book=Book(title=t, author=a))
            for t, a in (("The Histories", "Herodotus"), ("Postwar", "Tony Judt"))]
    summary = create_books(iter(reqs), timeout=TIMEOUT)
    print(f"CreateBooks: {summary.created_count} created: {list(summary.book_ids)}")

    delete_book(m["bookstore.v1.DeleteBookRequest"](shelf=1, book=book.id), timeout=TIMEOUT)
    try:
        get_book(m["bookstore.v1.GetBookRequest"](shelf=1, book=book.id), timeout=TIMEOUT)
        print("GetBook after DeleteBook: unexpectedly found")
        return 1
    except grpc.RpcError as e:
        print(f"GetBook after DeleteBook: {e.code().name} {e.details()}")
        if e.code() != grpc.StatusCode.NOT_FOUND:
            return 1
    if len(shelves) < 2 or "Kindred (Graphic Novel)" not in streamed or \
            summary.created_count != 2:
        print("unexpected results")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
