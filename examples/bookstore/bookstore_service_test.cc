#include "examples/bookstore/bookstore_service.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "examples/bookstore/bookstore.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bookstore {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kFictionShelf = 1;
constexpr int64_t kHistoryShelf = 2;
constexpr int64_t kLeftHandOfDarkness = 1;
constexpr int64_t kSpqr = 5;

// Serves a seeded BookstoreService with a fixed clock on an in-process channel.
class BookstoreServiceTest : public ::testing::Test {
 protected:
  static constexpr int64_t kNowSeconds = 1700000000;

  BookstoreServiceTest()
      : service_(BookstoreService::Options{
            [] { return absl::FromUnixSeconds(kNowSeconds) + absl::Milliseconds(250); },
            /*seed=*/true}) {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    stub_ = v1::Bookstore::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  ~BookstoreServiceTest() override { server_->Shutdown(); }

  grpc::Status GetBook(int64_t shelf, int64_t book_id, v1::Book* book) {
    grpc::ClientContext context;
    v1::GetBookRequest request;
    request.set_shelf(shelf);
    request.set_book(book_id);
    return stub_->GetBook(&context, request, book);
  }

  grpc::Status CreateBook(int64_t shelf, const v1::Book& book, v1::Book* created) {
    grpc::ClientContext context;
    v1::CreateBookRequest request;
    request.set_shelf(shelf);
    *request.mutable_book() = book;
    return stub_->CreateBook(&context, request, created);
  }

  grpc::Status ListBooks(const v1::ListBooksRequest& request,
                         v1::ListBooksResponse* response) {
    grpc::ClientContext context;
    return stub_->ListBooks(&context, request, response);
  }

  grpc::Status UpdateBook(const v1::UpdateBookRequest& request, v1::Book* updated) {
    grpc::ClientContext context;
    return stub_->UpdateBook(&context, request, updated);
  }

  static std::vector<std::string> Titles(const v1::ListBooksResponse& response) {
    std::vector<std::string> titles;
    for (const v1::Book& book : response.books()) titles.push_back(book.title());
    return titles;
  }

  BookstoreService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Bookstore::Stub> stub_;
};

v1::Book NewBook(const std::string& title, const std::string& author) {
  v1::Book book;
  book.set_title(title);
  book.set_author(author);
  book.set_genre(v1::Book::SCIENCE);
  book.add_tags("new");
  return book;
}

TEST_F(BookstoreServiceTest, ListShelvesReturnsSeededShelvesInIdOrder) {
  grpc::ClientContext context;
  v1::ListShelvesResponse response;
  ASSERT_TRUE(stub_->ListShelves(&context, v1::ListShelvesRequest(), &response).ok());
  ASSERT_EQ(response.shelves_size(), 2);
  EXPECT_EQ(response.shelves(0).id(), kFictionShelf);
  EXPECT_EQ(response.shelves(0).theme(), "Fiction");
  EXPECT_EQ(response.shelves(1).id(), kHistoryShelf);
  EXPECT_EQ(response.shelves(1).theme(), "History");
}

TEST_F(BookstoreServiceTest, CreateShelfAssignsNextIdAndGetShelfFindsIt) {
  grpc::ClientContext context;
  v1::CreateShelfRequest request;
  request.mutable_shelf()->set_theme("Poetry");
  v1::Shelf created;
  ASSERT_TRUE(stub_->CreateShelf(&context, request, &created).ok());
  EXPECT_EQ(created.id(), 3);
  EXPECT_EQ(created.theme(), "Poetry");

  grpc::ClientContext get_context;
  v1::GetShelfRequest get;
  get.set_shelf(3);
  v1::Shelf fetched;
  ASSERT_TRUE(stub_->GetShelf(&get_context, get, &fetched).ok());
  EXPECT_EQ(fetched.theme(), "Poetry");
}

TEST_F(BookstoreServiceTest, CreateShelfWithTakenIdIsAlreadyExists) {
  grpc::ClientContext context;
  v1::CreateShelfRequest request;
  request.mutable_shelf()->set_id(kHistoryShelf);
  request.mutable_shelf()->set_theme("Poetry");
  v1::Shelf created;
  grpc::Status status = stub_->CreateShelf(&context, request, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(status.error_message(), "shelf 2 already exists");
}

TEST_F(BookstoreServiceTest, CreateShelfWithoutThemeIsInvalidArgument) {
  grpc::ClientContext context;
  v1::Shelf created;
  grpc::Status status = stub_->CreateShelf(&context, v1::CreateShelfRequest(), &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "shelf.theme is required");
}

TEST_F(BookstoreServiceTest, GetShelfOfUnknownIdIsNotFoundNamingIt) {
  grpc::ClientContext context;
  v1::GetShelfRequest request;
  request.set_shelf(42);
  v1::Shelf shelf;
  grpc::Status status = stub_->GetShelf(&context, request, &shelf);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "shelf 42 not found");
}

TEST_F(BookstoreServiceTest, DeleteShelfRemovesItsBooks) {
  grpc::ClientContext context;
  v1::DeleteShelfRequest request;
  request.set_shelf(kHistoryShelf);
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->DeleteShelf(&context, request, &empty).ok());

  v1::Book book;
  grpc::Status status = GetBook(/*shelf=*/0, kSpqr, &book);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "book 5 not found");

  grpc::ClientContext again;
  status = stub_->DeleteShelf(&again, request, &empty);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "shelf 2 not found");
}

TEST_F(BookstoreServiceTest, CreateBookSetsIdShelfAndCreateTime) {
  v1::Book created;
  ASSERT_TRUE(
      CreateBook(kHistoryShelf, NewBook("A Brief History of Time", "Stephen Hawking"),
                 &created)
          .ok());
  EXPECT_EQ(created.id(), 6);
  EXPECT_EQ(created.shelf(), kHistoryShelf);
  EXPECT_EQ(created.create_time().seconds(), kNowSeconds);
  EXPECT_EQ(created.create_time().nanos(), 250000000);
  EXPECT_EQ(created.genre(), v1::Book::SCIENCE);
  EXPECT_THAT(created.tags(), ElementsAre("new"));

  v1::Book fetched;
  ASSERT_TRUE(GetBook(kHistoryShelf, 6, &fetched).ok());
  EXPECT_EQ(fetched.title(), "A Brief History of Time");
}

TEST_F(BookstoreServiceTest, CreateBookOnUnknownShelfIsNotFound) {
  v1::Book created;
  grpc::Status status = CreateBook(9, NewBook("Title", "Author"), &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "shelf 9 not found");
}

TEST_F(BookstoreServiceTest, CreateBookRejectsBadFields) {
  v1::Book created;
  grpc::Status status = CreateBook(kFictionShelf, NewBook("", "Author"), &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "book.title is required");

  v1::Book negative = NewBook("Title", "Author");
  negative.set_id(-4);
  status = CreateBook(kFictionShelf, negative, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "book.id must not be negative, got -4");

  v1::Book bad_genre = NewBook("Title", "Author");
  bad_genre.set_genre(static_cast<v1::Book::Genre>(99));
  status = CreateBook(kFictionShelf, bad_genre, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "book.genre 99 is not a known genre");
}

TEST_F(BookstoreServiceTest, CreateBookWithIdTakenOnAnotherShelfIsAlreadyExists) {
  v1::Book book = NewBook("Title", "Author");
  book.set_id(kSpqr);
  v1::Book created;
  grpc::Status status = CreateBook(kFictionShelf, book, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(status.error_message(), "book 5 already exists");
}

TEST_F(BookstoreServiceTest, GetBookWithoutShelfSearchesEveryShelf) {
  v1::Book book;
  ASSERT_TRUE(GetBook(/*shelf=*/0, kSpqr, &book).ok());
  EXPECT_EQ(book.title(), "SPQR");
  EXPECT_EQ(book.shelf(), kHistoryShelf);
}

TEST_F(BookstoreServiceTest, GetBookOnWrongShelfIsNotFoundNamingBoth) {
  v1::Book book;
  grpc::Status status = GetBook(kFictionShelf, kSpqr, &book);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "book 5 not found on shelf 1");
}

TEST_F(BookstoreServiceTest, ListBooksPagesThroughShelfInIdOrder) {
  v1::ListBooksRequest request;
  request.set_shelf(kFictionShelf);
  request.set_page_size(2);
  v1::ListBooksResponse first;
  ASSERT_TRUE(ListBooks(request, &first).ok());
  EXPECT_THAT(Titles(first),
              ElementsAre("The Left Hand of Darkness", "A Wizard of Earthsea"));
  ASSERT_FALSE(first.next_page_token().empty());

  request.set_page_token(first.next_page_token());
  v1::ListBooksResponse second;
  ASSERT_TRUE(ListBooks(request, &second).ok());
  EXPECT_THAT(Titles(second), ElementsAre("The Murder of Roger Ackroyd"));
  EXPECT_THAT(second.next_page_token(), IsEmpty());
}

TEST_F(BookstoreServiceTest, ListBooksFiltersByAuthor) {
  v1::ListBooksRequest request;
  request.set_shelf(kFictionShelf);
  request.set_author("Agatha Christie");
  v1::ListBooksResponse response;
  ASSERT_TRUE(ListBooks(request, &response).ok());
  EXPECT_THAT(Titles(response), ElementsAre("The Murder of Roger Ackroyd"));
}

TEST_F(BookstoreServiceTest, ListBooksRejectsBadPaging) {
  v1::ListBooksRequest request;
  request.set_shelf(kFictionShelf);
  request.set_page_size(-1);
  v1::ListBooksResponse response;
  grpc::Status status = ListBooks(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "page_size must not be negative, got -1");

  request.set_page_size(0);
  request.set_page_token("not-a-token");
  status = ListBooks(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("page_token \"not-a-token\""));
}

TEST_F(BookstoreServiceTest, ListBooksOfUnknownShelfIsNotFound) {
  v1::ListBooksRequest request;
  request.set_shelf(7);
  v1::ListBooksResponse response;
  grpc::Status status = ListBooks(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "shelf 7 not found");
}

TEST_F(BookstoreServiceTest, UpdateBookChangesOnlyMaskedFields) {
  v1::UpdateBookRequest request;
  request.set_shelf(kFictionShelf);
  request.mutable_book()->set_id(kLeftHandOfDarkness);
  request.mutable_book()->set_title("The Left Hand of Darkness (50th anniversary)");
  request.mutable_book()->set_author("Someone Else");
  request.mutable_update_mask()->add_paths("title");
  v1::Book updated;
  ASSERT_TRUE(UpdateBook(request, &updated).ok());
  EXPECT_EQ(updated.title(), "The Left Hand of Darkness (50th anniversary)");
  EXPECT_EQ(updated.author(), "Ursula K. Le Guin");
  EXPECT_EQ(updated.genre(), v1::Book::SCIENCE_FICTION);
  EXPECT_THAT(updated.tags(), ElementsAre("classic", "hugo"));

  v1::Book fetched;
  ASSERT_TRUE(GetBook(kFictionShelf, kLeftHandOfDarkness, &fetched).ok());
  EXPECT_EQ(fetched.title(), "The Left Hand of Darkness (50th anniversary)");
}

TEST_F(BookstoreServiceTest, UpdateBookWithEmptyMaskReplacesUpdatableFields) {
  v1::UpdateBookRequest request;
  request.set_shelf(kFictionShelf);
  *request.mutable_book() = NewBook("Replaced", "New Author");
  request.mutable_book()->set_id(kLeftHandOfDarkness);
  v1::Book updated;
  ASSERT_TRUE(UpdateBook(request, &updated).ok());
  EXPECT_EQ(updated.title(), "Replaced");
  EXPECT_EQ(updated.author(), "New Author");
  EXPECT_EQ(updated.genre(), v1::Book::SCIENCE);
  EXPECT_THAT(updated.tags(), ElementsAre("new"));
  EXPECT_EQ(updated.id(), kLeftHandOfDarkness);
  EXPECT_EQ(updated.shelf(), kFictionShelf);
}

TEST_F(BookstoreServiceTest, UpdateBookRejectsUnknownMaskPath) {
  v1::UpdateBookRequest request;
  request.set_shelf(kFictionShelf);
  request.mutable_book()->set_id(kLeftHandOfDarkness);
  request.mutable_update_mask()->add_paths("title");
  request.mutable_update_mask()->add_paths("publisher");
  v1::Book updated;
  grpc::Status status = UpdateBook(request, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "update_mask: unknown field \"publisher\"; updatable fields are title, "
            "author, genre, tags");
}

TEST_F(BookstoreServiceTest, UpdateBookRejectsOutputOnlyMaskPath) {
  v1::UpdateBookRequest request;
  request.set_shelf(kFictionShelf);
  request.mutable_book()->set_id(kLeftHandOfDarkness);
  request.mutable_update_mask()->add_paths("create_time");
  v1::Book updated;
  grpc::Status status = UpdateBook(request, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "update_mask: \"create_time\" is output only and cannot be updated");
}

TEST_F(BookstoreServiceTest, UpdateBookThatWouldLoseTitleIsInvalidAndChangesNothing) {
  v1::UpdateBookRequest request;
  request.set_shelf(kFictionShelf);
  request.mutable_book()->set_id(kLeftHandOfDarkness);
  request.mutable_update_mask()->add_paths("title");
  v1::Book updated;
  grpc::Status status = UpdateBook(request, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "book.title is required");

  v1::Book fetched;
  ASSERT_TRUE(GetBook(kFictionShelf, kLeftHandOfDarkness, &fetched).ok());
  EXPECT_EQ(fetched.title(), "The Left Hand of Darkness");
}

TEST_F(BookstoreServiceTest, UpdateBookOfUnknownBookIsNotFound) {
  v1::UpdateBookRequest request;
  request.set_shelf(kFictionShelf);
  request.mutable_book()->set_id(77);
  request.mutable_book()->set_title("Title");
  v1::Book updated;
  grpc::Status status = UpdateBook(request, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "book 77 not found on shelf 1");
}

TEST_F(BookstoreServiceTest, DeleteBookRemovesItOnce) {
  v1::DeleteBookRequest request;
  request.set_shelf(kHistoryShelf);
  request.set_book(kSpqr);
  google::protobuf::Empty empty;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->DeleteBook(&context, request, &empty).ok());

  v1::Book book;
  EXPECT_EQ(GetBook(kHistoryShelf, kSpqr, &book).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext again;
  grpc::Status status = stub_->DeleteBook(&again, request, &empty);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "book 5 not found on shelf 2");
}

TEST_F(BookstoreServiceTest, StreamBooksSendsEveryBookOfTheShelf) {
  grpc::ClientContext context;
  v1::StreamBooksRequest request;
  request.set_shelf(kFictionShelf);
  std::unique_ptr<grpc::ClientReader<v1::Book>> reader =
      stub_->StreamBooks(&context, request);
  std::vector<int64_t> ids;
  v1::Book book;
  while (reader->Read(&book)) ids.push_back(book.id());
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_THAT(ids, ElementsAre(1, 2, 3));
}

TEST_F(BookstoreServiceTest, StreamBooksOfUnknownShelfIsNotFound) {
  grpc::ClientContext context;
  v1::StreamBooksRequest request;
  request.set_shelf(12);
  std::unique_ptr<grpc::ClientReader<v1::Book>> reader =
      stub_->StreamBooks(&context, request);
  v1::Book book;
  EXPECT_FALSE(reader->Read(&book));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "shelf 12 not found");
}

TEST_F(BookstoreServiceTest, CreateBooksCreatesEveryStreamedBook) {
  grpc::ClientContext context;
  v1::CreateBooksResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::CreateBooksRequest>> writer =
      stub_->CreateBooks(&context, &response);
  for (const char* title : {"One", "Two"}) {
    v1::CreateBooksRequest request;
    request.set_shelf(kHistoryShelf);
    *request.mutable_book() = NewBook(title, "Author");
    ASSERT_TRUE(writer->Write(request));
  }
  v1::CreateBooksRequest explicit_id;
  explicit_id.set_shelf(kFictionShelf);
  *explicit_id.mutable_book() = NewBook("Three", "Author");
  explicit_id.mutable_book()->set_id(100);
  ASSERT_TRUE(writer->Write(explicit_id));
  ASSERT_TRUE(writer->WritesDone());
  ASSERT_TRUE(writer->Finish().ok());

  EXPECT_EQ(response.created_count(), 3);
  EXPECT_THAT(response.book_ids(), ElementsAre(101, 102, 100));
  v1::Book book;
  ASSERT_TRUE(GetBook(kHistoryShelf, 101, &book).ok());
  EXPECT_EQ(book.title(), "One");
  ASSERT_TRUE(GetBook(kFictionShelf, 100, &book).ok());
  EXPECT_EQ(book.title(), "Three");
}

TEST_F(BookstoreServiceTest, CreateBooksRefusingOneCreatesNone) {
  grpc::ClientContext context;
  v1::CreateBooksResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::CreateBooksRequest>> writer =
      stub_->CreateBooks(&context, &response);
  v1::CreateBooksRequest good;
  good.set_shelf(kHistoryShelf);
  *good.mutable_book() = NewBook("Good", "Author");
  v1::CreateBooksRequest missing_shelf = good;
  missing_shelf.set_shelf(33);
  writer->Write(good);
  writer->Write(missing_shelf);
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "message 1: shelf 33 not found");

  v1::ListBooksRequest list;
  list.set_shelf(kHistoryShelf);
  v1::ListBooksResponse books;
  ASSERT_TRUE(ListBooks(list, &books).ok());
  EXPECT_THAT(Titles(books), ElementsAre("The Guns of August", "SPQR"));
}

TEST_F(BookstoreServiceTest, CreateBooksNamesPositionOfInvalidBook) {
  grpc::ClientContext context;
  v1::CreateBooksResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::CreateBooksRequest>> writer =
      stub_->CreateBooks(&context, &response);
  v1::CreateBooksRequest good;
  good.set_shelf(kHistoryShelf);
  *good.mutable_book() = NewBook("Good", "Author");
  v1::CreateBooksRequest untitled = good;
  untitled.mutable_book()->clear_title();
  writer->Write(good);
  writer->Write(good);
  writer->Write(untitled);
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "message 2: book.title is required");
}

TEST_F(BookstoreServiceTest, ConcurrentCreatesGetDistinctIds) {
  constexpr int kThreads = 4;
  constexpr int kBooksPerThread = 25;
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &ids] {
      for (int i = 0; i < kBooksPerThread; ++i) {
        v1::Book created;
        if (CreateBook(kFictionShelf, NewBook("Title", "Author"), &created).ok()) {
          ids[t].push_back(created.id());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::flat_hash_set<int64_t> distinct;
  for (const auto& per_thread : ids) distinct.insert(per_thread.begin(), per_thread.end());
  EXPECT_EQ(distinct.size(), kThreads * kBooksPerThread);
}

}  // namespace
}  // namespace bookstore
