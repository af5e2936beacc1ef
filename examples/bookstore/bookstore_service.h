// BookstoreService: an in-memory implementation of bookstore.v1.Bookstore
// (examples/bookstore/bookstore.proto) for gRPC's synchronous server API.
//
// Thread-safe: every method may run concurrently; the store is guarded by one mutex, which
// is never held while a message is written to or read from the network.
//
// Example:
//
//   bookstore::BookstoreService service;  // two shelves with a few books
//   grpc::ServerBuilder builder;
//   builder.AddListeningPort("127.0.0.1:50051", grpc::InsecureServerCredentials());
//   builder.RegisterService(&service);
//   std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
//
// Status codes follow bookstore.proto: NOT_FOUND names the missing shelf or book,
// INVALID_ARGUMENT names the bad field (or mask path, or stream position), ALREADY_EXISTS
// names the taken id.

#ifndef EXAMPLES_BOOKSTORE_BOOKSTORE_SERVICE_H_
#define EXAMPLES_BOOKSTORE_BOOKSTORE_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "examples/bookstore/bookstore.grpc.pb.h"

namespace bookstore {

class BookstoreService final : public v1::Bookstore::Service {
 public:
  struct Options {
    // Returns the current time, stamped into Book.create_time. Empty: absl::Now.
    std::function<absl::Time()> clock;

    // Whether the store starts with the example data: shelf 1 "Fiction" with books 1-3,
    // shelf 2 "History" with books 4-5. Otherwise it starts empty.
    bool seed = true;
  };

  // A store seeded with the example data, stamped with the real time.
  BookstoreService();
  explicit BookstoreService(Options options);

  BookstoreService(const BookstoreService&) = delete;
  BookstoreService& operator=(const BookstoreService&) = delete;

  grpc::Status ListShelves(grpc::ServerContext* context,
                           const v1::ListShelvesRequest* request,
                           v1::ListShelvesResponse* response) override;
  grpc::Status CreateShelf(grpc::ServerContext* context,
                           const v1::CreateShelfRequest* request,
                           v1::Shelf* response) override;
  grpc::Status GetShelf(grpc::ServerContext* context, const v1::GetShelfRequest* request,
                        v1::Shelf* response) override;
  grpc::Status DeleteShelf(grpc::ServerContext* context,
                           const v1::DeleteShelfRequest* request,
                           google::protobuf::Empty* response) override;
  grpc::Status ListBooks(grpc::ServerContext* context, const v1::ListBooksRequest* request,
                         v1::ListBooksResponse* response) override;
  grpc::Status CreateBook(grpc::ServerContext* context,
                          const v1::CreateBookRequest* request,
                          v1::Book* response) override;
  grpc::Status GetBook(grpc::ServerContext* context, const v1::GetBookRequest* request,
                       v1::Book* response) override;
  grpc::Status UpdateBook(grpc::ServerContext* context,
                          const v1::UpdateBookRequest* request,
                          v1::Book* response) override;
  grpc::Status DeleteBook(grpc::ServerContext* context,
                          const v1::DeleteBookRequest* request,
                          google::protobuf::Empty* response) override;
  grpc::Status StreamBooks(grpc::ServerContext* context,
                           const v1::StreamBooksRequest* request,
                           grpc::ServerWriter<v1::Book>* writer) override;
  grpc::Status CreateBooks(grpc::ServerContext* context,
                           grpc::ServerReader<v1::CreateBooksRequest>* reader,
                           v1::CreateBooksResponse* response) override;

 private:
  struct ShelfEntry {
    v1::Shelf shelf;
    std::map<int64_t, v1::Book> books;  // by book id
  };

  // The methods below hold the logic of the RPCs above, in absl::Status terms.
  absl::StatusOr<v1::Shelf> AddShelf(v1::Shelf shelf) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Book> AddBook(int64_t shelf_id, v1::Book book)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::ListBooksResponse> ListBooksPage(const v1::ListBooksRequest& request)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Book> ApplyUpdate(const v1::UpdateBookRequest& request)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::CreateBooksResponse> AddBooks(
      const std::vector<v1::CreateBooksRequest>& requests) ABSL_LOCKS_EXCLUDED(mu_);

  // The shelf with `id`, or NOT_FOUND naming it.
  absl::StatusOr<ShelfEntry*> FindShelf(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The book with `book_id` on shelf `shelf_id` (any shelf if 0), or NOT_FOUND naming the
  // missing shelf or book.
  absl::StatusOr<v1::Book*> FindBook(int64_t shelf_id, int64_t book_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void Seed() ABSL_LOCKS_EXCLUDED(mu_);

  const std::function<absl::Time()> clock_;

  absl::Mutex mu_;
  std::map<int64_t, ShelfEntry> shelves_ ABSL_GUARDED_BY(mu_);  // by shelf id
  // The shelf each book is on, by book id: book ids are unique across shelves.
  absl::flat_hash_map<int64_t, int64_t> shelf_of_book_ ABSL_GUARDED_BY(mu_);
  int64_t next_shelf_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_book_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace bookstore

#endif  // EXAMPLES_BOOKSTORE_BOOKSTORE_SERVICE_H_
