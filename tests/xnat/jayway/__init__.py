"""The Jayway JsonPath oracle: a Java harness and its Python runner."""
