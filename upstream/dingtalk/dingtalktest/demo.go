package dingtalktest

// DemoCorpID is the organisation the demo users belong to.
const DemoCorpID = "ding5f3c8e2a9b7d41c6"

// DemoUsers are three people to log in as in tests and `dingbridge dev`: 张三 has an
// email, 李四 an email and a mobile number, 王五 neither and no organisation.
// None has an avatar URL, so nothing in dev reaches for the internet.
func DemoUsers() []User {
	return []User{
		{
			UnionID: "kZ3mQpT8vW2xYn4RaiEiE",
			OpenID:  "oP7dK2sLq9XcV5bNmiEiE",
			Nick:    "张三",
			Email:   "zhangsan@example.com",
			CorpID:  DemoCorpID,
		},
		{
			UnionID:   "Lx9sVb2Qw7NeR4tYuiEiE",
			OpenID:    "Hq3zWm8Kc1PaD6fGjiEiE",
			Nick:      "李四",
			Email:     "lisi@example.com",
			Mobile:    "13800138000",
			StateCode: "86",
			CorpID:    DemoCorpID,
		},
		{
			UnionID: "Wg5uNn1Jr8TyB2cXoiEiE",
			OpenID:  "Ae4bRt6Yh9MkS3vQpiEiE",
			Nick:    "王五",
		},
	}
}
