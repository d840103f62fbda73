"""What the tests share: real servers, receivers, schema checkers and history builders."""
