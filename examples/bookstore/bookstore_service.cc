#include "examples/bookstore/bookstore_service.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace bookstore {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr absl::string_view kPageTokenPrefix = "book:";
constexpr absl::string_view kUpdatablePaths[] = {"title", "author", "genre", "tags"};
constexpr absl::string_view kOutputOnlyPaths[] = {"id", "create_time", "shelf"};

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* timestamp) {
  const int64_t seconds = absl::ToUnixSeconds(time);
  timestamp->set_seconds(seconds);
  timestamp->set_nanos(static_cast<int32_t>(
      (time - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
}

absl::Status ShelfNotFound(int64_t shelf_id) {
  return absl::NotFoundError(absl::StrCat("shelf ", shelf_id, " not found"));
}

// Checks what a book must satisfy whoever wrote it: a title and a known genre.
absl::Status ValidateBookFields(const v1::Book& book) {
  if (book.title().empty()) return absl::InvalidArgumentError("book.title is required");
  if (!v1::Book::Genre_IsValid(book.genre())) {
    return absl::InvalidArgumentError(
        absl::StrCat("book.genre ", book.genre(), " is not a known genre"));
  }
  return absl::OkStatus();
}

// Checks a book a client asks to create, before any lookup.
absl::Status ValidateNewBook(const v1::Book& book) {
  if (book.id() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("book.id must not be negative, got ", book.id()));
  }
  return ValidateBookFields(book);
}

std::string EncodePageToken(int64_t next_book_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(kPageTokenPrefix, next_book_id));
}

// The id of the first book of the page `token` names, or INVALID_ARGUMENT.
absl::StatusOr<int64_t> DecodePageToken(const std::string& token) {
  std::string decoded;
  absl::string_view rest;
  int64_t id = 0;
  if (absl::WebSafeBase64Unescape(token, &decoded)) {
    rest = decoded;
    if (absl::ConsumePrefix(&rest, kPageTokenPrefix) && absl::SimpleAtoi(rest, &id) &&
        id > 0) {
      return id;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("page_token \"", token, "\" is not a token this server issued"));
}

// Checks the paths of an update mask; returns the paths to update (all updatable paths
// for an empty mask) or INVALID_ARGUMENT naming the first bad path.
absl::StatusOr<std::vector<std::string>> ResolveMask(
    const google::protobuf::FieldMask& mask) {
  if (mask.paths().empty()) {
    return std::vector<std::string>(std::begin(kUpdatablePaths), std::end(kUpdatablePaths));
  }
  std::vector<std::string> paths;
  for (const std::string& path : mask.paths()) {
    if (std::find(std::begin(kUpdatablePaths), std::end(kUpdatablePaths), path) !=
        std::end(kUpdatablePaths)) {
      paths.push_back(path);
    } else if (std::find(std::begin(kOutputOnlyPaths), std::end(kOutputOnlyPaths), path) !=
               std::end(kOutputOnlyPaths)) {
      return absl::InvalidArgumentError(
          absl::StrCat("update_mask: \"", path, "\" is output only and cannot be updated"));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("update_mask: unknown field \"", path, "\"; updatable fields are ",
                       absl::StrJoin(kUpdatablePaths, ", ")));
    }
  }
  return paths;
}

struct SeedBook {
  const char* title;
  const char* author;
  v1::Book::Genre genre;
  std::vector<const char*> tags;
};

struct SeedShelf {
  const char* theme;
  std::vector<SeedBook> books;
};

const std::vector<SeedShelf>& SeedData() {
  static const auto* const kShelves = new std::vector<SeedShelf>{
      {"Fiction",
       {
           {"The Left Hand of Darkness", "Ursula K. Le Guin", v1::Book::SCIENCE_FICTION,
            {"classic", "hugo"}},
           {"A Wizard of Earthsea", "Ursula K. Le Guin", v1::Book::FANTASY, {"classic"}},
           {"The Murder of Roger Ackroyd", "Agatha Christie", v1::Book::MYSTERY,
            {"classic"}},
       }},
      {"History",
       {
           {"The Guns of August", "Barbara W. Tuchman", v1::Book::HISTORY, {"pulitzer"}},
           {"SPQR", "Mary Beard", v1::Book::HISTORY, {"rome"}},
       }},
  };
  return *kShelves;
}

}  // namespace

BookstoreService::BookstoreService() : BookstoreService(Options()) {}

BookstoreService::BookstoreService(Options options)
    : clock_(options.clock ? std::move(options.clock) : [] { return absl::Now(); }) {
  if (options.seed) Seed();
}

void BookstoreService::Seed() {
  for (const SeedShelf& seed_shelf : SeedData()) {
    v1::Shelf shelf;
    shelf.set_theme(seed_shelf.theme);
    const int64_t shelf_id = AddShelf(std::move(shelf)).value().id();
    absl::MutexLock lock(&mu_);
    for (const SeedBook& seed_book : seed_shelf.books) {
      v1::Book book;
      book.set_title(seed_book.title);
      book.set_author(seed_book.author);
      book.set_genre(seed_book.genre);
      for (const char* tag : seed_book.tags) book.add_tags(tag);
      AddBook(shelf_id, std::move(book)).IgnoreError();
    }
  }
}

absl::StatusOr<BookstoreService::ShelfEntry*> BookstoreService::FindShelf(int64_t id) {
  auto it = shelves_.find(id);
  if (it == shelves_.end()) return ShelfNotFound(id);
  return &it->second;
}

absl::StatusOr<v1::Book*> BookstoreService::FindBook(int64_t shelf_id, int64_t book_id) {
  if (shelf_id == 0) {
    auto where = shelf_of_book_.find(book_id);
    if (where == shelf_of_book_.end()) {
      return absl::NotFoundError(absl::StrCat("book ", book_id, " not found"));
    }
    shelf_id = where->second;
  }
  absl::StatusOr<ShelfEntry*> shelf = FindShelf(shelf_id);
  if (!shelf.ok()) return shelf.status();
  auto it = (*shelf)->books.find(book_id);
  if (it == (*shelf)->books.end()) {
    return absl::NotFoundError(
        absl::StrCat("book ", book_id, " not found on shelf ", shelf_id));
  }
  return &it->second;
}

absl::StatusOr<v1::Shelf> BookstoreService::AddShelf(v1::Shelf shelf) {
  if (shelf.id() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("shelf.id must not be negative, got ", shelf.id()));
  }
  if (shelf.theme().empty()) return absl::InvalidArgumentError("shelf.theme is required");
  absl::MutexLock lock(&mu_);
  if (shelf.id() == 0) {
    shelf.set_id(next_shelf_id_);
  } else if (shelves_.count(shelf.id()) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("shelf ", shelf.id(), " already exists"));
  }
  next_shelf_id_ = std::max(next_shelf_id_, shelf.id() + 1);
  shelves_[shelf.id()].shelf = shelf;
  return shelf;
}

absl::StatusOr<v1::Book> BookstoreService::AddBook(int64_t shelf_id, v1::Book book) {
  absl::StatusOr<ShelfEntry*> shelf = FindShelf(shelf_id);
  if (!shelf.ok()) return shelf.status();
  if (book.id() == 0) {
    book.set_id(next_book_id_);
  } else if (shelf_of_book_.contains(book.id())) {
    return absl::AlreadyExistsError(absl::StrCat("book ", book.id(), " already exists"));
  }
  next_book_id_ = std::max(next_book_id_, book.id() + 1);
  book.set_shelf(shelf_id);
  SetTimestamp(clock_(), book.mutable_create_time());
  shelf_of_book_[book.id()] = shelf_id;
  (*shelf)->books[book.id()] = book;
  return book;
}

absl::StatusOr<v1::ListBooksResponse> BookstoreService::ListBooksPage(
    const v1::ListBooksRequest& request) {
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must not be negative, got ", request.page_size()));
  }
  const int page_size = request.page_size() == 0
                            ? kDefaultPageSize
                            : std::min(request.page_size(), kMaxPageSize);
  int64_t first_id = 0;
  if (!request.page_token().empty()) {
    absl::StatusOr<int64_t> decoded = DecodePageToken(request.page_token());
    if (!decoded.ok()) return decoded.status();
    first_id = *decoded;
  }

  v1::ListBooksResponse response;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<ShelfEntry*> shelf = FindShelf(request.shelf());
  if (!shelf.ok()) return shelf.status();
  const std::map<int64_t, v1::Book>& books = (*shelf)->books;
  for (auto it = books.lower_bound(first_id); it != books.end(); ++it) {
    if (!request.author().empty() && it->second.author() != request.author()) continue;
    if (response.books_size() == page_size) {
      response.set_next_page_token(EncodePageToken(it->first));
      break;
    }
    *response.add_books() = it->second;
  }
  return response;
}

absl::StatusOr<v1::Book> BookstoreService::ApplyUpdate(
    const v1::UpdateBookRequest& request) {
  const v1::Book& update = request.book();
  if (update.id() == 0) return absl::InvalidArgumentError("book.id is required");
  absl::StatusOr<std::vector<std::string>> paths = ResolveMask(request.update_mask());
  if (!paths.ok()) return paths.status();

  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::Book*> stored = FindBook(request.shelf(), update.id());
  if (!stored.ok()) return stored.status();
  v1::Book updated = **stored;
  for (const std::string& path : *paths) {
    if (path == "title") {
      updated.set_title(update.title());
    } else if (path == "author") {
      updated.set_author(update.author());
    } else if (path == "genre") {
      updated.set_genre(update.genre());
    } else if (path == "tags") {
      *updated.mutable_tags() = update.tags();
    }
  }
  if (absl::Status valid = ValidateBookFields(updated); !valid.ok()) return valid;
  **stored = updated;
  return updated;
}

absl::StatusOr<v1::CreateBooksResponse> BookstoreService::AddBooks(
    const std::vector<v1::CreateBooksRequest>& requests) {
  absl::MutexLock lock(&mu_);
  // Check every book before creating any, so that a refused one leaves the store as it was.
  absl::flat_hash_set<int64_t> requested_ids;
  for (size_t i = 0; i < requests.size(); ++i) {
    const v1::CreateBooksRequest& request = requests[i];
    if (shelves_.count(request.shelf()) == 0) {
      return absl::NotFoundError(
          absl::StrCat("message ", i, ": shelf ", request.shelf(), " not found"));
    }
    const int64_t id = request.book().id();
    if (id != 0 && (shelf_of_book_.contains(id) || !requested_ids.insert(id).second)) {
      return absl::AlreadyExistsError(
          absl::StrCat("message ", i, ": book ", id, " already exists"));
    }
  }
  v1::CreateBooksResponse response;
  // Move past the ids this batch asks for, so that an id the server assigns never takes
  // one that a later message asks for.
  for (int64_t id : requested_ids) next_book_id_ = std::max(next_book_id_, id + 1);
  for (const v1::CreateBooksRequest& request : requests) {
    absl::StatusOr<v1::Book> book = AddBook(request.shelf(), request.book());
    if (!book.ok()) return book.status();  // Not reached: checked above.
    response.add_book_ids(book->id());
  }
  response.set_created_count(response.book_ids_size());
  return response;
}

grpc::Status BookstoreService::ListShelves(grpc::ServerContext* /*context*/,
                                           const v1::ListShelvesRequest* /*request*/,
                                           v1::ListShelvesResponse* response) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : shelves_) *response->add_shelves() = entry.shelf;
  return grpc::Status::OK;
}

grpc::Status BookstoreService::CreateShelf(grpc::ServerContext* /*context*/,
                                           const v1::CreateShelfRequest* request,
                                           v1::Shelf* response) {
  absl::StatusOr<v1::Shelf> shelf = AddShelf(request->shelf());
  if (!shelf.ok()) return ToGrpcStatus(shelf.status());
  *response = *std::move(shelf);
  return grpc::Status::OK;
}

grpc::Status BookstoreService::GetShelf(grpc::ServerContext* /*context*/,
                                        const v1::GetShelfRequest* request,
                                        v1::Shelf* response) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<ShelfEntry*> shelf = FindShelf(request->shelf());
  if (!shelf.ok()) return ToGrpcStatus(shelf.status());
  *response = (*shelf)->shelf;
  return grpc::Status::OK;
}

grpc::Status BookstoreService::DeleteShelf(grpc::ServerContext* /*context*/,
                                           const v1::DeleteShelfRequest* request,
                                           google::protobuf::Empty* /*response*/) {
  absl::MutexLock lock(&mu_);
  auto it = shelves_.find(request->shelf());
  if (it == shelves_.end()) return ToGrpcStatus(ShelfNotFound(request->shelf()));
  for (const auto& [book_id, book] : it->second.books) shelf_of_book_.erase(book_id);
  shelves_.erase(it);
  return grpc::Status::OK;
}

grpc::Status BookstoreService::ListBooks(grpc::ServerContext* /*context*/,
                                         const v1::ListBooksRequest* request,
                                         v1::ListBooksResponse* response) {
  absl::StatusOr<v1::ListBooksResponse> page = ListBooksPage(*request);
  if (!page.ok()) return ToGrpcStatus(page.status());
  *response = *std::move(page);
  return grpc::Status::OK;
}

grpc::Status BookstoreService::CreateBook(grpc::ServerContext* /*context*/,
                                          const v1::CreateBookRequest* request,
                                          v1::Book* response) {
  if (absl::Status valid = ValidateNewBook(request->book()); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::Book> book = AddBook(request->shelf(), request->book());
  if (!book.ok()) return ToGrpcStatus(book.status());
  *response = *std::move(book);
  return grpc::Status::OK;
}

grpc::Status BookstoreService::GetBook(grpc::ServerContext* /*context*/,
                                       const v1::GetBookRequest* request,
                                       v1::Book* response) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::Book*> book = FindBook(request->shelf(), request->book());
  if (!book.ok()) return ToGrpcStatus(book.status());
  *response = **book;
  return grpc::Status::OK;
}

grpc::Status BookstoreService::UpdateBook(grpc::ServerContext* /*context*/,
                                          const v1::UpdateBookRequest* request,
                                          v1::Book* response) {
  absl::StatusOr<v1::Book> book = ApplyUpdate(*request);
  if (!book.ok()) return ToGrpcStatus(book.status());
  *response = *std::move(book);
  return grpc::Status::OK;
}

grpc::Status BookstoreService::DeleteBook(grpc::ServerContext* /*context*/,
                                          const v1::DeleteBookRequest* request,
                                          google::protobuf::Empty* /*response*/) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<ShelfEntry*> shelf = FindShelf(request->shelf());
  if (!shelf.ok()) return ToGrpcStatus(shelf.status());
  if ((*shelf)->books.erase(request->book()) == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("book ", request->book(), " not found on shelf ",
                                     request->shelf()));
  }
  shelf_of_book_.erase(request->book());
  return grpc::Status::OK;
}

grpc::Status BookstoreService::StreamBooks(grpc::ServerContext* /*context*/,
                                           const v1::StreamBooksRequest* request,
                                           grpc::ServerWriter<v1::Book>* writer) {
  std::vector<v1::Book> books;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<ShelfEntry*> shelf = FindShelf(request->shelf());
    if (!shelf.ok()) return ToGrpcStatus(shelf.status());
    for (const auto& [id, book] : (*shelf)->books) books.push_back(book);
  }
  for (const v1::Book& book : books) {
    if (!writer->Write(book)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
  }
  return grpc::Status::OK;
}

grpc::Status BookstoreService::CreateBooks(
    grpc::ServerContext* /*context*/, grpc::ServerReader<v1::CreateBooksRequest>* reader,
    v1::CreateBooksResponse* response) {
  std::vector<v1::CreateBooksRequest> requests;
  v1::CreateBooksRequest request;
  while (reader->Read(&request)) {
    if (absl::Status valid = ValidateNewBook(request.book()); !valid.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("message ", requests.size(), ": ", valid.message()));
    }
    requests.push_back(std::move(request));
    request.Clear();
  }
  absl::StatusOr<v1::CreateBooksResponse> created = AddBooks(requests);
  if (!created.ok()) return ToGrpcStatus(created.status());
  *response = *std::move(created);
  return grpc::Status::OK;
}

}  // namespace bookstore
