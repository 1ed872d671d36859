#include "interop/torch_save_unpickler.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <variant>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace posenc {
namespace {

// A class or function the pickle names (GLOBAL "module\nname\n").
struct Global {
  std::string module;
  std::string name;
  std::string qualified() const { return module + "." + name; }
};
struct Mark {};
struct Tuple;
// Tuples stay items until they are stored: the arguments of REDUCE and a storage's persistent id
// hold globals, which an IValue cannot.
using Item = std::variant<c10::IValue, Global, Mark, std::shared_ptr<const Tuple>>;
struct Tuple {
  std::vector<Item> elements;
};

torch::ScalarType storage_dtype(const Global& storage_type) {
  static const std::map<std::string, torch::ScalarType> dtypes{
      {"FloatStorage", torch::kFloat32}, {"DoubleStorage", torch::kFloat64},
      {"HalfStorage", torch::kFloat16},  {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},    {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},   {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},    {"BoolStorage", torch::kBool}};
  const auto found = dtypes.find(storage_type.name);
  TORCH_CHECK(storage_type.module == "torch" && found != dtypes.end(), "unsupported storage type ",
              storage_type.qualified());
  return found->second;
}

c10::IValue value(const Item& item) {
  if (const auto* tuple = std::get_if<std::shared_ptr<const Tuple>>(&item)) {
    std::vector<c10::IValue> elements;
    for (const auto& element : (*tuple)->elements)
      elements.push_back(value(element));
    return c10::ivalue::Tuple::create(std::move(elements));
  }
  TORCH_CHECK(std::holds_alternative<c10::IValue>(item),
              "malformed pickle: a value was expected, found a class or a MARK");
  return std::get<c10::IValue>(item);
}

const Tuple& tuple_of(const Item& item, const char* what) {
  const auto* tuple = std::get_if<std::shared_ptr<const Tuple>>(&item);
  TORCH_CHECK(tuple != nullptr, "malformed pickle: ", what, " is not a tuple");
  return **tuple;
}

std::vector<int64_t> integers(const Item& item) {
  std::vector<int64_t> values;
  for (const auto& element : tuple_of(item, "a tensor size or stride").elements)
    values.push_back(value(element).toInt());
  return values;
}

class Unpickler {
 public:
  Unpickler(const std::string& pickle,
            const std::function<std::pair<at::DataPtr, size_t>(const std::string&)>& read_storage)
      : pickle_(pickle), read_storage_(read_storage) {}

  c10::IValue run() {
    for (;;) {
      const auto opcode = static_cast<unsigned char>(byte());
      if (opcode == '.')  // STOP
        return value(pop());
      execute(opcode);
    }
  }

 private:
  // --- reading the byte stream ---
  char byte() {
    TORCH_CHECK(position_ < pickle_.size(), "the pickle ends early (truncated?)");
    return pickle_[position_++];
  }
  std::string bytes(uint64_t count) {
    TORCH_CHECK(count <= pickle_.size() - position_, "the pickle ends early (truncated?)");
    std::string text = pickle_.substr(position_, count);
    position_ += count;
    return text;
  }
  uint64_t little_endian(int count) {
    uint64_t value = 0;
    for (int i = 0; i < count; ++i)
      value |= static_cast<uint64_t>(static_cast<unsigned char>(byte())) << (8 * i);
    return value;
  }
  std::string line() {
    const size_t end = pickle_.find('\n', position_);
    TORCH_CHECK(end != std::string::npos, "the pickle ends early (truncated?)");
    std::string text = pickle_.substr(position_, end - position_);
    position_ = end + 1;
    return text;
  }

  // --- the stack ---
  void push(Item item) { stack_.push_back(std::move(item)); }
  Item pop() {
    TORCH_CHECK(!stack_.empty(), "malformed pickle: pop from an empty stack");
    Item item = std::move(stack_.back());
    stack_.pop_back();
    return item;
  }
  Item& top() {
    TORCH_CHECK(!stack_.empty(), "malformed pickle: empty stack");
    return stack_.back();
  }
  // The items above the last MARK, which is removed.
  std::vector<Item> pop_to_mark() {
    std::vector<Item> items;
    for (;;) {
      Item item = pop();
      if (std::holds_alternative<Mark>(item))
        break;
      items.insert(items.begin(), std::move(item));
    }
    return items;
  }
  static std::vector<c10::IValue> values(const std::vector<Item>& items) {
    std::vector<c10::IValue> result;
    for (const auto& item : items)
      result.push_back(value(item));
    return result;
  }
  static c10::IValue empty_dict() {
    return c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get());
  }
  void set_items(c10::IValue& dict, const std::vector<c10::IValue>& items) {
    TORCH_CHECK(dict.isGenericDict() && items.size() % 2 == 0,
                "malformed pickle: SETITEMS without a dict");
    auto entries = dict.toGenericDict();
    for (size_t i = 0; i < items.size(); i += 2)
      entries.insert_or_assign(items[i], items[i + 1]);
  }
  void append(c10::IValue& list, const std::vector<c10::IValue>& items) {
    TORCH_CHECK(list.isList(), "malformed pickle: APPENDS without a list");
    auto elements = list.toList();
    for (const auto& item : items)
      elements.push_back(item);
  }
  void memoize(uint64_t index) { memo_[index] = top(); }
  void recall(uint64_t index) {
    const auto found = memo_.find(index);
    TORCH_CHECK(found != memo_.end(), "malformed pickle: unknown memo slot ", index);
    push(found->second);
  }

  // --- what the pickle builds ---
  c10::IValue call(const Global& callable, const Tuple& arguments) {
    const auto& args = arguments.elements;
    const std::string name = callable.qualified();
    if (name == "collections.OrderedDict")
      return empty_dict();
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      TORCH_CHECK(args.size() >= 4, name, " with ", args.size(), " arguments");
      const auto storage = value(args[0]).toTensor();
      return storage.as_strided(integers(args[2]), integers(args[3]), value(args[1]).toInt());
    }
    if (name == "torch.jit._pickle.restore_type_tag") {  // LibTorch's pickle_save: typed dicts
      TORCH_CHECK(!args.empty(), name, " without a value");
      return value(args[0]);
    }
    if (name == "torch._utils._rebuild_parameter") {
      TORCH_CHECK(!args.empty() && value(args[0]).isTensor(), name, " without a tensor");
      return value(args[0]);
    }
    TORCH_CHECK(false, "the pickle builds a ", name,
                ", which is not part of a state dict (only tensors, dicts, lists and numbers are "
                "read)");
  }

  // persistent id ('storage', torch.XStorage, key, location, numel)
  c10::IValue load_storage(const Item& id) {
    const auto& fields = tuple_of(id, "a persistent id").elements;
    TORCH_CHECK(fields.size() >= 5 && value(fields[0]).isString() &&
                    value(fields[0]).toStringRef() == "storage" &&
                    std::holds_alternative<Global>(fields[1]),
                "malformed pickle: a persistent id that is not a storage");
    const std::string key = value(fields[2]).toStringRef();
    const auto cached = storages_.find(key);
    if (cached != storages_.end())
      return cached->second;
    const auto dtype = storage_dtype(std::get<Global>(fields[1]));
    const int64_t count = value(fields[4]).toInt();
    auto [data, size] = read_storage_(key);
    TORCH_CHECK(count >= 0 && static_cast<size_t>(count) <= size / c10::elementSize(dtype),
                "storage ", key, " holds ", size, " bytes, too few for ", count, " elements of ",
                dtype, " (truncated?)");
    const auto needed = static_cast<size_t>(count) * c10::elementSize(dtype);
    auto tensor = torch::empty({count}, torch::TensorOptions().dtype(dtype));
    if (needed > 0)
      std::memcpy(tensor.data_ptr(), data.get(), needed);
    storages_[key] = tensor;
    return tensor;
  }

  void execute(unsigned char opcode) {
    switch (opcode) {
      case 0x80:
        byte();
        return;  // PROTO
      case 0x95:
        little_endian(8);
        return;  // FRAME
      case '(':
        push(Mark{});
        return;  // MARK
      case '0':
        pop();
        return;  // POP
      case '1':
        pop_to_mark();
        return;  // POP_MARK
      case '2':
        push(top());
        return;  // DUP
      case 'N':
        push(c10::IValue());
        return;  // NONE
      case 0x88:
        push(c10::IValue(true));
        return;  // NEWTRUE
      case 0x89:
        push(c10::IValue(false));
        return;  // NEWFALSE
      case 'K':
        push(c10::IValue(static_cast<int64_t>(little_endian(1))));
        return;  // BININT1
      case 'M':
        push(c10::IValue(static_cast<int64_t>(little_endian(2))));
        return;  // BININT2
      case 'J':  // BININT
        push(c10::IValue(static_cast<int64_t>(static_cast<int32_t>(little_endian(4)))));
        return;
      case 0x8a: {  // LONG1
        const auto count = static_cast<int>(little_endian(1));
        TORCH_CHECK(count <= 8, "an integer wider than 64 bits in the pickle");
        uint64_t raw = count > 0 ? little_endian(count) : 0;
        if (count > 0 && count < 8 && (raw >> (8 * count - 1)) & 1)
          raw |= ~uint64_t{0} << (8 * count);  // sign extension
        push(c10::IValue(static_cast<int64_t>(raw)));
        return;
      }
      case 'G': {  // BINFLOAT, big-endian
        uint64_t raw = 0;
        for (int i = 0; i < 8; ++i)
          raw = (raw << 8) | static_cast<unsigned char>(byte());
        double number = 0.0;
        std::memcpy(&number, &raw, sizeof(number));
        push(c10::IValue(number));
        return;
      }
      case 'X':
      case 'T':
      case 'B':  // BINUNICODE, BINSTRING, BINBYTES
        push(c10::IValue(bytes(little_endian(4))));
        return;
      case 0x8c:
      case 'U':
      case 'C':  // SHORT_BINUNICODE/STRING/BYTES
        push(c10::IValue(bytes(little_endian(1))));
        return;
      case 0x8d:
      case 0x8e:  // BINUNICODE8, BINBYTES8
        push(c10::IValue(bytes(little_endian(8))));
        return;
      case '}':
        push(empty_dict());
        return;  // EMPTY_DICT
      case ']':  // EMPTY_LIST
        push(c10::IValue(c10::impl::GenericList(c10::AnyType::get())));
        return;
      case ')':
        push(std::make_shared<const Tuple>());
        return;  // EMPTY_TUPLE
      case 't':
        push(std::make_shared<const Tuple>(Tuple{pop_to_mark()}));
        return;  // TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
        std::vector<Item> elements(opcode - 0x84);
        for (auto element = elements.rbegin(); element != elements.rend(); ++element)
          *element = pop();
        push(std::make_shared<const Tuple>(Tuple{std::move(elements)}));
        return;
      }
      case 'd': {  // DICT
        auto dict = empty_dict();
        set_items(dict, values(pop_to_mark()));
        push(dict);
        return;
      }
      case 'l': {  // LIST
        c10::IValue list{c10::impl::GenericList(c10::AnyType::get())};
        append(list, values(pop_to_mark()));
        push(list);
        return;
      }
      case 's': {  // SETITEM
        const auto item = value(pop());
        const auto key = value(pop());
        auto dict = value(top());
        set_items(dict, {key, item});
        return;
      }
      case 'u': {  // SETITEMS
        const auto items = values(pop_to_mark());
        auto dict = value(top());
        set_items(dict, items);
        return;
      }
      case 'a': {  // APPEND
        const auto item = value(pop());
        auto list = value(top());
        append(list, {item});
        return;
      }
      case 'e': {  // APPENDS
        const auto items = values(pop_to_mark());
        auto list = value(top());
        append(list, items);
        return;
      }
      case 'q':
        memoize(little_endian(1));
        return;  // BINPUT
      case 'r':
        memoize(little_endian(4));
        return;  // LONG_BINPUT
      case 0x94:
        memoize(memo_.size());
        return;  // MEMOIZE
      case 'p':
        memoize(std::stoull(line()));
        return;  // PUT
      case 'h':
        recall(little_endian(1));
        return;  // BINGET
      case 'j':
        recall(little_endian(4));
        return;  // LONG_BINGET
      case 'g':
        recall(std::stoull(line()));
        return;    // GET
      case 'c': {  // GLOBAL
        Global global{line(), ""};
        global.name = line();
        push(global);
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        const auto name = value(pop()).toStringRef();
        push(Global{value(pop()).toStringRef(), name});
        return;
      }
      case 'R': {  // REDUCE
        const Item arguments = pop();
        const Item callable = pop();
        TORCH_CHECK(std::holds_alternative<Global>(callable),
                    "malformed pickle: REDUCE without a callable");
        push(call(std::get<Global>(callable), tuple_of(arguments, "REDUCE's arguments")));
        return;
      }
      case 'Q':
        push(load_storage(pop()));
        return;  // BINPERSID
      case 'b':
        pop();
        return;  // BUILD: attributes are not needed
      case 0x81:    // NEWOBJ: cls.__new__(cls, *args), how torch.save(model) stores the module
      case 0x92: {  // NEWOBJ_EX
        if (opcode == 0x92)
          pop();  // keyword arguments
        pop();    // arguments
        const Item type = pop();
        TORCH_CHECK(std::holds_alternative<Global>(type),
                    "malformed pickle: NEWOBJ without a class");
        TORCH_CHECK(false, "the pickle builds a ", std::get<Global>(type).qualified(),
                    ", which is not part of a state dict (only tensors, dicts, lists and numbers "
                    "are read)");
        return;  // not reached: TORCH_CHECK(false) throws
      }
      default:
        TORCH_CHECK(false, "unsupported pickle opcode 0x", std::hex, static_cast<int>(opcode),
                    " at byte ", std::dec, position_ - 1,
                    " (state dicts saved by torch.save do not use it)");
    }
  }

  const std::string& pickle_;
  const std::function<std::pair<at::DataPtr, size_t>(const std::string&)>& read_storage_;
  size_t position_ = 0;
  std::vector<Item> stack_;
  std::map<uint64_t, Item> memo_;
  std::map<std::string, c10::IValue> storages_;  // by key: tensors may share a storage
};

}  // namespace

c10::IValue unpickle_torch_save(
    const std::string& pickle,
    const std::function<std::pair<at::DataPtr, size_t>(const std::string& key)>& read_storage) {
  return Unpickler(pickle, read_storage).run();
}

}  // namespace posenc
